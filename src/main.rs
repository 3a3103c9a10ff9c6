//! The `iot-cert-migrate` binary: parse, run, map the outcome to an exit code.

use iot_cert_migrate::cli::{Cli, LogFormat};
use iot_cert_migrate::ExitCode;

fn main() {
    let cli = match Cli::parse_checked() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors; everything else is a usage error (2).
            std::process::exit(if e.use_stderr() {
                ExitCode::Invalid.code()
            } else {
                0
            });
        }
    };
    iot_cert_migrate::init_logging(&cli.global);
    let json_logs = cli.global.log_format == LogFormat::Json;
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let code = match runtime.block_on(iot_cert_migrate::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            let code = e.exit_code();
            // Each cause once: the library's messages already include theirs.
            let message = e.report();
            if json_logs {
                // Machines reading --log-format json get one JSON object per line, errors too.
                tracing::error!(exit_code = code.code(), "{message}");
            } else {
                eprintln!("error: {message}");
            }
            code
        }
    };
    // Don't wait for abandoned in-flight requests (timeout faults can hold them for minutes).
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code.code());
}
