//! The migration report as one self-contained HTML page: styles inline, the chart an inline
//! SVG, no script, no external file of any kind (it opens from a mail attachment or an
//! offline share). Every count sits in an element with `data-ledger` and `data-state` so
//! that a machine can read the page as well as a person.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::devices::{Arrival, Device, DevicesReport};
use crate::durable;
use crate::error::Error;
use crate::files::{self, Writing};

use super::migration::{
    busy_spans, format_duration, format_time, runs, states, MigrationReport, Series, DEFAULT_REGION,
};
use super::Counts;

/// One colour per state, the same in the bar and the tables.
fn state_colour(state: &str) -> &'static str {
    match state {
        "accepted" => "#1b7f3b",
        "transferred" => "#58a55c",
        "pending" => "#c9ced6",
        "in_doubt" => "#e0a800",
        "failed" => "#c62828",
        "waiting" => "#ef6c00",
        "registered" => "#2e7d6f",
        "retired" => "#145c4f",
        "handed_off" => "#3f8fa8",
        "rejected" => "#8e44ad",
        "cancelled" => "#6d7b8d",
        _ => "#3b6ea5",
    }
}

/// Colours of the chart's lines.
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif;
       margin: 2rem auto; max-width: 1040px; padding: 0 1rem; color: #1d2330; background: #fff; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.15rem; margin-top: 2.2rem; border-bottom: 1px solid #dde1e7; padding-bottom: .3rem; }
h3 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
p.meta { color: #5b6472; margin-top: 0; }
p.message { margin: .2rem 0 .4rem; }
.headline { font-size: 1.1rem; margin: 1rem 0 .6rem; }
.bar { display: flex; height: 22px; border-radius: 4px; overflow: hidden; background: #eef0f3; }
.bar span { display: block; height: 100%; }
.keys { margin: .5rem 0 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; }
.keys li { font-size: .9rem; }
.swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: 2px; margin-right: .35rem; vertical-align: -1px; }
table { border-collapse: collapse; margin: .4rem 0; font-size: .92rem; }
th, td { padding: .3rem .7rem; border-bottom: 1px solid #e6e9ee; text-align: left; }
th { background: #f5f6f8; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.zero { color: #a3aab5; }
td.id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .8rem; }
.note { color: #5b6472; font-size: .9rem; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font-family: inherit; font-size: 11px; fill: #5b6472; }
";

/// The page.
pub fn render(report: &MigrationReport) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = format!("Migration report: {}", report.manifest.display());
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    let made = humantime::parse_rfc3339(&report.generated_at)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| format_time(d.as_secs_f64()))
        .unwrap_or_else(|| report.generated_at.clone());
    let _ = write!(
        h,
        "<h1>Certificate migration</h1>\n<p class=\"meta\">manifest <code>{}</code> · {} · as of \
         {}</p>\n",
        esc(&report.manifest.display().to_string()),
        crate::output::count(report.certificates, "certificate"),
        esc(&made)
    );
    headline(&mut h, report);
    state_table(&mut h, report);
    target_table(&mut h, report);
    failures(&mut h, report);
    if let Some(d) = &report.devices {
        devices(&mut h, d);
    }
    chart_section(&mut h, report);
    h.push_str("<h2>Ledgers read</h2>\n<ul>\n");
    for l in &report.ledgers {
        let _ = writeln!(
            h,
            "<li>{} ledger <code>{}</code>: {}</li>",
            l.kind,
            esc(&l.path.display().to_string()),
            runs(l.runs)
        );
    }
    h.push_str("</ul>\n</body>\n</html>\n");
    h
}

fn headline(h: &mut String, report: &MigrationReport) {
    let c = &report.counts;
    let total = report.certificates.max(1) as f64;
    let _ = writeln!(
        h,
        "<p class=\"headline\"><strong>{:.1}%</strong> accepted by their target, \
         <strong>{:.1}%</strong> transferred or further; {} failed, {} waiting for an option, \
         {} not started yet.</p>",
        c.accepted as f64 * 100.0 / total,
        (c.accepted + c.transferred + c.rejected) as f64 * 100.0 / total,
        c.failed,
        c.waiting,
        c.pending
    );
    h.push_str("<div class=\"bar\" role=\"img\" aria-label=\"certificates per state\">");
    for (state, n) in states(c) {
        if n > 0 {
            let _ = write!(
                h,
                "<span style=\"width:{:.3}%;background:{}\" title=\"{}: {n}\"></span>",
                n as f64 * 100.0 / total,
                state_colour(state),
                label(state)
            );
        }
    }
    h.push_str("</div>\n<ul class=\"keys\">\n");
    for (state, n) in states(c) {
        if n > 0 {
            let _ = writeln!(
                h,
                "<li><span class=\"swatch\" style=\"background:{}\"></span>{} {n}</li>",
                state_colour(state),
                label(state)
            );
        }
    }
    h.push_str("</ul>\n");
}

/// Counts per state: all ledgers together, and each as `status` shows it.
fn state_table(h: &mut String, report: &MigrationReport) {
    h.push_str(
        "<h2>Certificates per state</h2>\n<table id=\"states\">\n<tr><th>state</th>\
                <th class=\"n\">all</th>",
    );
    for l in &report.ledgers {
        let _ = write!(h, "<th class=\"n\">{} ledger</th>", l.kind);
    }
    h.push_str("</tr>\n");
    let all = states(&report.counts);
    for (i, (state, n)) in all.iter().enumerate() {
        let _ = write!(
            h,
            "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td>{}",
            state_colour(state),
            label(state),
            count_cell("all", state, *n)
        );
        for l in &report.ledgers {
            let (_, n) = states(&l.counts)[i];
            h.push_str(&count_cell(l.kind.as_str(), state, n));
        }
        h.push_str("</tr>\n");
    }
    let _ = write!(
        h,
        "<tr><th>total</th><th class=\"n\">{}</th>",
        total(&report.counts)
    );
    for l in &report.ledgers {
        let _ = write!(h, "<th class=\"n\">{}</th>", total(&l.counts));
    }
    h.push_str(
        "</tr>\n</table>\n<p class=\"note\">\"all\" counts each certificate once, in \
                the state of its furthest ledger (the accept or retire ledger's once it has one); each \
                ledger's column is what <code>status</code> of that ledger says.</p>\n",
    );
}

fn target_table(h: &mut String, report: &MigrationReport) {
    h.push_str("<h2>Per target account and region</h2>\n");
    // Only the states some certificate is in.
    let mut shown: Vec<&str> = states(&report.counts)
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, _)| *s)
        .collect();
    if shown.is_empty() {
        shown.push("pending");
    }
    h.push_str("<table id=\"targets\">\n<tr><th>target account</th><th>region</th>");
    for s in &shown {
        let _ = write!(h, "<th class=\"n\">{}</th>", label(s));
    }
    h.push_str("<th class=\"n\">total</th></tr>\n");
    for t in &report.targets {
        let region = t.region.as_deref().unwrap_or(DEFAULT_REGION);
        let key = format!("{}/{}", t.account, t.region.as_deref().unwrap_or(""));
        let _ = write!(
            h,
            "<tr data-target=\"{}\"><td>{}</td><td>{}</td>",
            esc(&key),
            esc(&t.account),
            esc(region)
        );
        let counts = states(&t.counts);
        for s in &shown {
            let n = counts.iter().find(|(name, _)| name == s).map_or(0, |c| c.1);
            h.push_str(&count_cell("target", s, n));
        }
        let _ = writeln!(h, "<td class=\"n\">{}</td></tr>", total(&t.counts));
    }
    h.push_str("</table>\n");
}

fn failures(h: &mut String, report: &MigrationReport) {
    h.push_str("<h2>Failures by error code</h2>\n");
    if report.failures.is_empty() {
        h.push_str("<p>No certificate has failed.</p>\n");
        return;
    }
    h.push_str(
        "<table id=\"failure-codes\">\n<tr><th>error code</th><th>stage</th>\
                <th class=\"n\">certificates</th></tr>\n",
    );
    for g in &report.failures {
        let _ = writeln!(
            h,
            "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td class=\"n\" data-error-code=\"{}\">{}</td></tr>",
            anchor(&g.stage, &g.error_code),
            esc(or_dash(&g.error_code)),
            esc(&g.stage),
            esc(&g.error_code),
            g.count
        );
    }
    h.push_str(
        "</table>\n<p class=\"note\">The failure reports beside the ledgers list every \
                failed certificate; fix the cause and run again with <code>--retry-failed</code> \
                (retryable failures are tried again by a plain rerun).</p>\n",
    );
    for g in &report.failures {
        let _ = writeln!(
            h,
            "<h3 id=\"{}\">{} at {}: {}</h3>",
            anchor(&g.stage, &g.error_code),
            esc(or_dash(&g.error_code)),
            esc(&g.stage),
            crate::output::count(g.count, "certificate")
        );
        if let Some(w) = g.waiting_for {
            let _ = writeln!(
                h,
                "<p class=\"note\">Refused before any change, waiting for {}: the same \
                 command with it takes them (no <code>--retry-failed</code>).</p>",
                esc(w.as_str())
            );
        }
        // One message for all (the usual case) is said once, above the rows.
        let first = g.rows.first().map(|r| r.message.as_str()).unwrap_or("");
        let common = g.rows.iter().all(|r| r.message == first);
        if common {
            let _ = writeln!(h, "<p class=\"message\">{}</p>", esc(first));
        }
        let regions = g.rows.iter().any(|r| r.region.is_some());
        h.push_str("<table class=\"failures\">\n<tr><th>certificate</th><th>target</th>");
        if regions {
            h.push_str("<th>region</th>");
        }
        if !common {
            h.push_str("<th>message</th>");
        }
        h.push_str("<th class=\"n\">attempts</th><th>retried by a rerun</th></tr>\n");
        for r in &g.rows {
            let _ = write!(
                h,
                "<tr><td class=\"id\">{}</td><td>{}</td>",
                esc(&r.certificate_id),
                esc(&r.target_account)
            );
            if regions {
                let region = r.region.as_deref().unwrap_or(DEFAULT_REGION);
                let _ = write!(h, "<td>{}</td>", esc(region));
            }
            if !common {
                let _ = write!(h, "<td>{}</td>", esc(&r.message));
            }
            let _ = writeln!(
                h,
                "<td class=\"n\">{}</td><td>{}</td></tr>",
                r.attempts,
                if r.retryable {
                    "yes"
                } else if g.waiting_for.is_some() {
                    "with the option it waits for"
                } else {
                    "no: fix, then --retry-failed"
                }
            );
        }
        h.push_str("</table>\n");
        if g.count as usize > g.rows.len() {
            let _ = writeln!(
                h,
                "<p class=\"note\">... and {} more: see the failure report.</p>",
                g.count as usize - g.rows.len()
            );
        }
    }
}

/// Certificates whose devices have not arrived, listed on the page.
const DEVICES_LISTED: usize = 100;

/// `report --devices`: whether each certificate's devices arrived, and the handoff's
/// executions (counts in `data-ledger="devices"` and `data-ledger="handoff"` cells).
fn devices(h: &mut String, d: &DevicesReport) {
    let _ = writeln!(
        h,
        "<h2 id=\"devices\">Devices</h2>\n<p class=\"note\">As AWS answered when the report \
         was made: each thing's execution of the handoff job in the source account, and whether \
         its device is connected in the target account ({}).</p>",
        crate::output::count(d.certificates, "certificate")
    );
    if let Some(s) = &d.stopped {
        let _ = writeln!(
            h,
            "<p class=\"note\">{} after {} of {}: the numbers cover those only.</p>",
            esc(s.reason),
            s.after,
            s.of
        );
    }
    h.push_str("<table id=\"devices-arrival\">\n<tr><th>certificates</th><th class=\"n\">count</th></tr>\n");
    for c in Arrival::ALL {
        let n = d.counts[c.as_str()];
        let _ = writeln!(
            h,
            "<tr><td>{}</td>{}</tr>",
            label(c.as_str()),
            count_cell("devices", c.as_str(), n)
        );
    }
    h.push_str("</table>\n");
    match &d.handoff {
        Some(handoff) => {
            h.push_str(
                "<table id=\"devices-handoff\">\n<tr><th>handoff execution</th>\
                 <th class=\"n\">things</th></tr>\n",
            );
            for (status, n) in &handoff.executions {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td>{}</tr>",
                    esc(status),
                    count_cell("handoff", &esc(status), *n)
                );
            }
            h.push_str("</table>\n");
        }
        None => h.push_str(
            "<p>Handoff not run: no handoff ledger beside the manifest, so no job execution \
             was asked about.</p>\n",
        ),
    }
    if d.not_arrived_count == 0 {
        h.push_str("<p>Every device has arrived.</p>\n");
        return;
    }
    h.push_str(
        "<table id=\"devices-not-arrived\" class=\"failures\">\n<tr><th>certificate</th>\
         <th>target</th><th>category</th><th>thing</th><th>handoff execution</th>\
         <th>connected</th><th>since</th></tr>\n",
    );
    for s in d.not_arrived.iter().take(DEVICES_LISTED) {
        let cells = |d: Option<&Device>| {
            let dash = |v: Option<String>| esc(v.as_deref().unwrap_or("-"));
            match d {
                Some(d) => format!(
                    "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                    esc(&d.thing),
                    dash(d.handoff_execution.clone()),
                    dash(
                        d.connected
                            .map(|c| if c { "yes" } else { "no" }.to_string())
                    ),
                    dash(d.connected_since.clone())
                ),
                None => "<td>-</td><td>-</td><td>-</td><td>-</td>".to_string(),
            }
        };
        let devices: Vec<Option<&Device>> = if s.devices.is_empty() {
            vec![None]
        } else {
            s.devices.iter().map(Some).collect()
        };
        for dev in devices {
            let _ = writeln!(
                h,
                "<tr data-certificate=\"{}\"><td class=\"id\">{}</td><td>{}</td><td title=\"{}\">{}</td>{}</tr>",
                esc(&s.certificate_id),
                esc(&s.certificate_id),
                esc(&s.target_account),
                esc(&s.detail),
                label(s.category.as_str()),
                cells(dev)
            );
        }
    }
    h.push_str("</table>\n");
    let shown = d.not_arrived.len().min(DEVICES_LISTED) as u64;
    if d.not_arrived_count > shown {
        let _ = writeln!(
            h,
            "<p class=\"note\">... and {} more: <code>--output json</code> lists up to 1000 \
             certificates.</p>",
            d.not_arrived_count - shown
        );
    }
}

fn chart_section(h: &mut String, report: &MigrationReport) {
    let t = &report.timeline;
    let _ = writeln!(
        h,
        "<h2>Certificates per minute</h2>\n<p class=\"note\">One line per run and outcome, in \
         buckets of {}; time between runs is left out (the axis breaks).</p>",
        format_duration(t.bucket_s as f64).replace(".0 s", " s")
    );
    if t.series.is_empty() {
        h.push_str("<p>No certificate has reached an end state yet.</p>\n");
        return;
    }
    h.push_str(&chart(&t.series, t.bucket_s));
    h.push_str("<ul class=\"keys\">\n");
    for (i, s) in t.series.iter().enumerate() {
        let _ = writeln!(
            h,
            "<li><span class=\"swatch\" style=\"background:{}\"></span>{}: {} from {} in {}, \
             peak {:.0}/min</li>",
            PALETTE[i % PALETTE.len()],
            esc(&s.label()),
            crate::output::count(s.total, "certificate"),
            format_time(s.start),
            format_duration(s.end - s.start),
            s.peak_per_minute(t.bucket_s)
        );
    }
    h.push_str("</ul>\n");
}

/// The chart: time across (busy stretches side by side), certificates per minute up.
fn chart(series: &[Series], bucket_s: u64) -> String {
    const W: f64 = 960.0;
    const H: f64 = 300.0;
    const LEFT: f64 = 60.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 14.0;
    const BOTTOM: f64 = 46.0;
    const GAP: f64 = 26.0;
    let bucket = bucket_s as f64;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;

    // Stretches of time with a run going on (nearby runs share one), each at least a bucket
    // wide, then laid side by side in proportion to their length.
    let spans = merge_close(
        busy_spans(
            series
                .iter()
                .map(|s| (s.start, s.end.max(s.start + bucket))),
        ),
        2.0 * bucket,
    );
    let lengths: Vec<f64> = spans.iter().map(|(a, b)| (b - a).max(bucket)).collect();
    let room = plot_w - GAP * (spans.len() as f64 - 1.0);
    let total: f64 = lengths.iter().sum();
    let mut x0 = Vec::new();
    let mut x = LEFT;
    for l in &lengths {
        x0.push(x);
        x += room * l / total + GAP;
    }
    let to_x = |t: f64| -> f64 {
        let i = spans.iter().rposition(|(a, _)| *a <= t).unwrap_or(0);
        let (a, _) = spans[i];
        let w = room * lengths[i] / total;
        x0[i] + ((t - a) / lengths[i]).clamp(0.0, 1.0) * w
    };

    let peak = series
        .iter()
        .map(|s| s.peak_per_minute(bucket_s))
        .fold(0.0, f64::max);
    // Four or five gridlines at round values.
    let step = nice_ceiling(peak / 4.0);
    let steps = (peak / step).ceil().max(1.0) as u32;
    let top = step * f64::from(steps);
    let to_y = |v: f64| TOP + plot_h - v / top * plot_h;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" \
         role=\"img\" aria-label=\"certificates per minute over time\">"
    );
    // Grid and y labels.
    for k in 0..=steps {
        let v = step * f64::from(k);
        let y = to_y(v);
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e6e9ee\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            format_count(v)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">\
         certificates per minute</text>",
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    // Each stretch: its baseline, when it starts and ends, and a break mark before it.
    for (i, (a, b)) in spans.iter().enumerate() {
        let w = room * lengths[i] / total;
        let base = TOP + plot_h;
        let _ = writeln!(
            svg,
            "<line x1=\"{:.1}\" y1=\"{base:.1}\" x2=\"{:.1}\" y2=\"{base:.1}\" stroke=\"#8a93a0\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x0[i],
            x0[i] + w,
            x0[i],
            base + 16.0,
            esc(&format_time(*a))
        );
        if w > 150.0 {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">+{}</text>",
                x0[i] + w,
                base + 30.0,
                esc(&format_duration(b - a))
            );
        }
        if i > 0 {
            let xb = x0[i] - GAP / 2.0;
            let _ = writeln!(
                svg,
                "<path d=\"M{:.1} {:.1} l6 -10 M{:.1} {:.1} l6 -10\" stroke=\"#8a93a0\"/>",
                xb - 5.0,
                base + 5.0,
                xb,
                base + 5.0
            );
        }
    }
    // The lines: every bucket from a run's first to its last, empty ones at zero.
    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let (Some(first), Some(last)) = (s.buckets.first(), s.buckets.last()) else {
            continue;
        };
        let mut points = Vec::new();
        let mut b = first.0;
        let mut it = s.buckets.iter().peekable();
        while b <= last.0 + 0.5 {
            let n = match it.peek() {
                Some((t, n)) if (*t - b).abs() < 0.5 => {
                    it.next();
                    *n
                }
                _ => 0,
            };
            let t = (b + bucket / 2.0).clamp(s.start, s.end.max(s.start));
            points.push((to_x(t), to_y(n as f64 * 60.0 / bucket), t, n));
            b += bucket;
        }
        let _ = writeln!(svg, "<g data-series=\"{}\">", esc(&s.label()));
        if points.len() > 1 {
            let path: Vec<String> = points
                .iter()
                .map(|(x, y, _, _)| format!("{x:.1},{y:.1}"))
                .collect();
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                path.join(" ")
            );
        }
        if points.len() <= 40 {
            for (x, y, t, n) in &points {
                let _ = writeln!(
                    svg,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{colour}\"><title>{}: {} at {}</title></circle>",
                    esc(&s.label()),
                    format_count(*n as f64 * 60.0 / bucket) + "/min",
                    esc(&format_time(*t))
                );
            }
        }
        svg.push_str("</g>\n");
    }
    svg.push_str("</svg>\n");
    svg
}

/// Joins spans whose gap is under `gap`.
fn merge_close(spans: Vec<(f64, f64)>, gap: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (a, b) in spans {
        match out.last_mut() {
            Some(last) if a - last.1 < gap => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The smallest 1, 2 or 5 times a power of ten at or above `v` (at least 1).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * mag)
}

fn format_count(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn count_cell(ledger: &str, state: &str, n: u64) -> String {
    format!(
        "<td class=\"n{}\" data-ledger=\"{ledger}\" data-state=\"{state}\">{n}</td>",
        if n == 0 { " zero" } else { "" }
    )
}

fn total(c: &Counts) -> u64 {
    states(c).iter().map(|(_, n)| n).sum()
}

fn label(state: &str) -> String {
    state.replace('_', " ")
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// An id for a failure group's section (letters, digits and dashes only).
fn anchor(stage: &str, code: &str) -> String {
    let raw = format!("failed-{stage}-{code}");
    raw.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Checks, before the ledgers are read, that the page can be written at `path` (its
/// directory exists and takes a new file, and `path` is not a directory).
pub fn check_writable(path: &Path) -> Result<(), Error> {
    files::check_writable(path, "HTML report", Writing::Replace)
}

/// Writes the page over `path` ([`durable::replace`]): whoever opens it meanwhile, or after a
/// crash, sees the old page or the new one, whole.
pub fn write(path: &Path, page: &str) -> Result<(), Error> {
    durable::replace(path, |w| w.write_all(page.as_bytes())).map_err(|e| Error::io(path, e))
}

/// Text for HTML (element content and quoted attribute values alike).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_ledger_cannot_become_markup() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(anchor("prepare", "Bad\"><x"), "failed-prepare-Bad---x");
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(600.0), 1000.0);
        assert_eq!(nice_ceiling(420.0), 500.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
    }
}
