//! Writing manifests (tests, the demo, benchmarks and `select` generate them).

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::scan::csv_to_io;
use super::{ManifestRow, WRITE_BUFFER_BYTES};

/// Writes a manifest CSV (header + rows): used by tests, the demo and
/// benchmarks to generate manifests. The header is
/// `certificate_id,target_account,transfer_message`, plus `region` only if
/// some row has a region. Rows are written as given, without validation.
pub fn write_manifest(path: &Path, rows: &[ManifestRow]) -> io::Result<()> {
    let with_region = rows.iter().any(|row| row.region.is_some());
    let mut writer = ManifestWriter::create(path, with_region)?;
    for row in rows {
        writer.write_row(row)?;
    }
    writer.finish()
}

/// Streaming counterpart of [`write_manifest`], to generate large manifests
/// without holding their rows in memory: to a file ([`ManifestWriter::create`]) or to any
/// writer ([`ManifestWriter::new`]: `select`'s durable replacement, stdout).
pub struct ManifestWriter<W: Write = BufWriter<File>> {
    writer: csv::Writer<W>,
    with_region: bool,
}

impl<W: Write> fmt::Debug for ManifestWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestWriter")
            .field("with_region", &self.with_region)
            .finish_non_exhaustive()
    }
}

impl ManifestWriter {
    /// Creates (or truncates) `path` and writes the header
    /// `certificate_id,target_account,transfer_message[,region]`.
    pub fn create(path: &Path, with_region: bool) -> io::Result<ManifestWriter> {
        let file = BufWriter::with_capacity(WRITE_BUFFER_BYTES, File::create(path)?);
        ManifestWriter::new(file, with_region)
    }
}

impl<W: Write> ManifestWriter<W> {
    /// Writes the header `certificate_id,target_account,transfer_message[,region]` to `out`.
    pub fn new(out: W, with_region: bool) -> io::Result<ManifestWriter<W>> {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(out);
        let mut header = vec!["certificate_id", "target_account", "transfer_message"];
        if with_region {
            header.push("region");
        }
        writer.write_record(&header).map_err(csv_to_io)?;
        Ok(ManifestWriter {
            writer,
            with_region,
        })
    }

    /// Appends one row (its `line` is ignored). A row with a region is
    /// refused when the writer was created without the region column.
    pub fn write_row(&mut self, row: &ManifestRow) -> io::Result<()> {
        let message = row.transfer_message.as_deref().unwrap_or("");
        let result = if self.with_region {
            let region = row.region.as_deref().unwrap_or("");
            self.writer.write_record([
                row.certificate_id.as_str(),
                row.target_account.as_str(),
                message,
                region,
            ])
        } else if row.region.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "row has a region but the manifest was created without a region column",
            ));
        } else {
            self.writer.write_record([
                row.certificate_id.as_str(),
                row.target_account.as_str(),
                message,
            ])
        };
        result.map_err(csv_to_io)
    }

    /// Flushes everything to the writer.
    pub fn finish(self) -> io::Result<()> {
        let mut out = self
            .writer
            .into_inner()
            .map_err(|error| error.into_error())?;
        out.flush()
    }
}
