//! Printing: one table per target, a comparison of two targets, and the
//! performance targets of issues 4 and 5 with PASS/MISS.

use std::fmt::Write as _;

use crate::bench::{Phase, Settings, TargetReport};
use crate::extension::EXTENSION_URN;
use crate::launch::Memory;

/// Issue 4: GET /Users/{id} throughput.
const GOAL_GET_OPS: f64 = 20_000.0;
/// Issue 4: userName eq throughput.
const GOAL_FILTER_OPS: f64 = 10_000.0;
/// Issue 4: userName eq p99, ms.
const GOAL_FILTER_P99_MS: f64 = 5.0;
/// Issue 4: POST /Users throughput.
const GOAL_CREATE_OPS: f64 = 3_000.0;
/// Issue 4: group +100 members p99, ms.
const GOAL_GROUP_P99_MS: f64 = 20.0;
/// Issue 4: resident memory, MB.
const GOAL_RSS_MB: f64 = 150.0;
/// Issue 4: ratio to the Python server on every phase.
const GOAL_RATIO: f64 = 20.0;
/// Issue 4 sets its targets for this many users (and issue 5 its filter
/// target).
const GOAL_USERS: usize = 100_000;
/// Issue 5: a POST carrying 20 custom attributes costs at most this many
/// times a POST without.
const GOAL_CUSTOM_POST_COST: f64 = 1.3;
/// Issue 5: filter on an indexed custom attribute p99, ms.
const GOAL_CUSTOM_FILTER_P99_MS: f64 = 5.0;
/// Issue 5 sets its POST target for this many custom attributes.
const GOAL_CUSTOM_ATTRIBUTES: usize = 20;

/// KiB to MB (10^6 bytes).
fn mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1_000_000.0
}

/// A latency in ms, or `-`.
fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

/// A memory figure, or `-`.
fn memory_cell(memory: Option<Memory>) -> String {
    memory.map_or_else(|| "-".to_owned(), |m| format!("{:.1}", mb(m.rss_kib)))
}

/// A CPU use in cores as a percentage of one core, or `-`.
fn percent(cores: Option<f64>) -> String {
    cores.map_or_else(|| "-".to_owned(), |c| format!("{:.0}%", c * 100.0))
}

/// The table of one target.
pub fn target_table(report: &TargetReport, settings: &Settings) -> String {
    let mut out = String::new();
    let pid = report
        .pid
        .map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"));
    let _ = writeln!(out, "\n== {} ({}, {pid}) ==", report.name, report.base);
    let _ = writeln!(
        out,
        "users {}, concurrency {}; group of {} members, {} timed PATCHes of +{} one after another (group rebuilt every {}, untimed)",
        settings.users,
        report.concurrency,
        settings.group_size,
        settings.group_patches,
        settings.group_add,
        settings.group_rebuild_every
    );
    if let Some(extension) = report.extension {
        let _ = writeln!(
            out,
            "custom attributes: {} strings under {EXTENSION_URN}; phase 1 (plain) and 1b (with them) \
             create half the users each, in alternating blocks; 3b filters on agentCode eq (one match)",
            extension.attributes()
        );
    }
    let _ = writeln!(
        out,
        "{:<29} {:>8} {:>6} {:>11} {:>8} {:>8} {:>9} {:>4} {:>8} {:>8} {:>7} {:>7}",
        "phase",
        "count",
        "errors",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "conc",
        "resp B",
        "RSS MB",
        "srv CPU",
        "cli CPU"
    );
    for phase in &report.phases {
        let r = &phase.result;
        let _ = writeln!(
            out,
            "{:<29} {:>8} {:>6} {:>11.1} {:>8} {:>8} {:>9} {:>4} {:>8} {:>8} {:>7} {:>7}",
            phase.phase.label(),
            r.ok,
            r.errors,
            r.ops_per_sec(),
            ms(r.quantile_ms(0.5)),
            ms(r.quantile_ms(0.99)),
            ms(r.max_ms()),
            r.concurrency,
            r.mean_response_bytes(),
            memory_cell(phase.memory_after),
            percent(phase.server_cores),
            percent(phase.client_cores),
        );
        for message in &r.sample_errors {
            let _ = writeln!(out, "    error: {message}");
        }
    }
    match report.memory_end {
        Some(m) => {
            let _ = writeln!(
                out,
                "server memory: VmRSS {:.1} MB, peak VmHWM {:.1} MB",
                mb(m.rss_kib),
                mb(m.peak_kib)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "server memory: not measured (no --pid, or /proc unreadable)"
            );
        }
    }
    let _ = writeln!(
        out,
        "(srv CPU / cli CPU: server / benchmark CPU time over the phase, 100% = one core busy)"
    );
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// The ratio `a / b` of two throughputs, when `b` is positive.
fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// Per phase: throughput ratio of `first` to `second`, and the p99 of each.
pub fn comparison_table(first: &TargetReport, second: &TargetReport) -> String {
    let mut out = String::new();
    let (a_name, b_name) = (first.name.as_str(), second.name.as_str());
    let _ = writeln!(
        out,
        "\n== {a_name} vs {b_name} (ratio = {a_name} ops/s / {b_name} ops/s) =="
    );
    let headers = [
        format!("{a_name} ops/s"),
        format!("{b_name} ops/s"),
        "ratio".to_owned(),
        format!("{a_name} p99 ms"),
        format!("{b_name} p99 ms"),
    ];
    let widths: Vec<usize> = headers.iter().map(|h| h.len().max(9)).collect();
    let row = |out: &mut String, label: &str, cells: [String; 5]| {
        let mut line = format!("{label:<29}");
        for (cell, width) in cells.iter().zip(&widths) {
            let _ = write!(line, " {cell:>width$}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    };
    row(&mut out, "phase", headers.clone());
    for phase in Phase::ALL {
        let (Some(a), Some(b)) = (first.phase(phase), second.phase(phase)) else {
            let _ = writeln!(out, "{:<29} (not measured on both)", phase.label());
            continue;
        };
        let (a, b) = (&a.result, &b.result);
        row(
            &mut out,
            phase.label(),
            [
                format!("{:.1}", a.ops_per_sec()),
                format!("{:.1}", b.ops_per_sec()),
                ratio(a.ops_per_sec(), b.ops_per_sec())
                    .map_or_else(|| "-".to_owned(), |r| format!("{r:.1}x")),
                ms(a.quantile_ms(0.99)),
                ms(b.quantile_ms(0.99)),
            ],
        );
    }
    if let (Some(a), Some(b)) = (first.memory_end, second.memory_end) {
        row(
            &mut out,
            "peak RSS MB (VmHWM)",
            [
                format!("{:.1}", mb(a.peak_kib)),
                format!("{:.1}", mb(b.peak_kib)),
                ratio(mb(a.peak_kib), mb(b.peak_kib))
                    .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x")),
                String::new(),
                String::new(),
            ],
        );
    }
    out
}

/// PASS or MISS, with a reason when errors make an otherwise met goal fail.
fn verdict(met: bool, errors: u64) -> String {
    match (met, errors) {
        (true, 0) => "PASS".to_owned(),
        (true, n) => format!("MISS ({n} errors)"),
        (false, _) => "MISS".to_owned(),
    }
}

/// Writes one line of a targets table: the goal, what was measured, the
/// verdict.
fn goal_line(out: &mut String, goal: &str, measured: &str, verdict: &str) {
    let _ = writeln!(out, "{goal:<44} {measured:<46} {verdict}");
}

/// The targets of issue 4, checked on `report` (and against `baseline`,
/// the Python server, when measured).
pub fn goals(
    report: &TargetReport,
    baseline: Option<&TargetReport>,
    settings: &Settings,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n== Issue 4 performance targets, measured on {} ==",
        report.name
    );
    if settings.users < GOAL_USERS {
        let _ = writeln!(
            out,
            "(the targets are set for {GOAL_USERS} users; this run used {}: indicative only)",
            settings.users
        );
    }
    let mut line = |goal: &str, measured: String, verdict: String| {
        goal_line(&mut out, goal, &measured, &verdict)
    };
    let throughput = |phase: Phase| {
        report
            .phase(phase)
            .map(|p| (p.result.ops_per_sec(), p.result.errors))
    };

    match throughput(Phase::Create) {
        Some((ops, errors)) => line(
            "POST /Users >= 3,000 users/s",
            format!("{ops:.0} users/s"),
            verdict(ops >= GOAL_CREATE_OPS, errors),
        ),
        None => line(
            "POST /Users >= 3,000 users/s",
            "not measured".into(),
            "MISS".into(),
        ),
    }
    match throughput(Phase::GetById) {
        Some((ops, errors)) => line(
            "GET /Users/{id} >= 20,000 req/s",
            format!("{ops:.0} req/s"),
            verdict(ops >= GOAL_GET_OPS, errors),
        ),
        None => line(
            "GET /Users/{id} >= 20,000 req/s",
            "not measured".into(),
            "MISS".into(),
        ),
    }
    match report.phase(Phase::FilterUserName) {
        Some(p) => {
            let ops = p.result.ops_per_sec();
            let p99 = p.result.quantile_ms(0.99);
            line(
                "userName eq >= 10,000 req/s, p99 < 5 ms",
                format!("{ops:.0} req/s, p99 {} ms", ms(p99)),
                verdict(
                    ops >= GOAL_FILTER_OPS && p99.is_some_and(|v| v < GOAL_FILTER_P99_MS),
                    p.result.errors,
                ),
            );
        }
        None => line(
            "userName eq >= 10,000 req/s, p99 < 5 ms",
            "not measured".into(),
            "MISS".into(),
        ),
    }
    match report.phase(Phase::GroupAdd) {
        Some(p) => {
            let p99 = p.result.quantile_ms(0.99);
            line(
                "group PATCH +100 members p99 < 20 ms",
                format!(
                    "p99 {} ms ({} PATCHes, group of {})",
                    ms(p99),
                    p.result.ok,
                    settings.group_size
                ),
                verdict(p99.is_some_and(|v| v < GOAL_GROUP_P99_MS), p.result.errors),
            );
        }
        None => line(
            "group PATCH +100 members p99 < 20 ms",
            "not measured".into(),
            "MISS".into(),
        ),
    }
    match report.memory_end {
        Some(m) => line(
            "RSS < 150 MB (peak VmHWM)",
            format!("peak {:.1} MB, now {:.1} MB", mb(m.peak_kib), mb(m.rss_kib)),
            verdict(mb(m.peak_kib) < GOAL_RSS_MB, 0),
        ),
        None => line(
            "RSS < 150 MB (peak VmHWM)",
            "not measured (pid unknown)".into(),
            "MISS".into(),
        ),
    }
    match baseline {
        Some(base) => {
            let mut worst: Option<(Phase, f64)> = None;
            let mut missing = Vec::new();
            for phase in Phase::ISSUE4 {
                let pair = report.phase(phase).zip(base.phase(phase));
                match pair.and_then(|(a, b)| ratio(a.result.ops_per_sec(), b.result.ops_per_sec()))
                {
                    Some(r) => {
                        if worst.is_none_or(|(_, w)| r < w) {
                            worst = Some((phase, r));
                        }
                    }
                    None => missing.push(phase.label()),
                }
            }
            let goal = format!(">= 20x {} on every phase", base.name);
            match worst {
                Some((phase, r)) if missing.is_empty() => line(
                    &goal,
                    format!("lowest {r:.1}x ({})", phase.label()),
                    verdict(r >= GOAL_RATIO, 0),
                ),
                Some((phase, r)) => line(
                    &goal,
                    format!(
                        "lowest {r:.1}x ({}); {} not compared",
                        phase.label(),
                        missing.len()
                    ),
                    "MISS".into(),
                ),
                None => line(&goal, "no phase measured on both".into(), "MISS".into()),
            }
        }
        None => line(
            ">= 20x the Python server on every phase",
            "not measured (no --compare-url)".into(),
            "-".into(),
        ),
    }
    out
}

/// The targets of issue 5, checked on `report`: the cost of a POST carrying
/// custom attributes relative to a plain one (phases 1b and 1, measured in
/// alternating blocks of the same run), and the p99 of a filter on a custom
/// attribute (phase 3b).
pub fn custom_goals(report: &TargetReport, settings: &Settings) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n== Issue 5 performance targets, measured on {} ==",
        report.name
    );
    let post_goal = |n: usize| format!("POST +{n} custom attrs <= 1.3x a plain POST");
    let filter_goal = "filter custom eq p99 < 5 ms at 100,000 users";
    let Some(extension) = report.extension else {
        let why = if settings.extension.is_some() {
            "not measured (no Muster admin API on the target)"
        } else {
            "not measured (use --custom-attributes 20)"
        };
        goal_line(&mut out, &post_goal(GOAL_CUSTOM_ATTRIBUTES), why, "-");
        goal_line(&mut out, filter_goal, why, "-");
        return out;
    };
    let attributes = extension.attributes();
    if settings.users < GOAL_USERS || attributes != GOAL_CUSTOM_ATTRIBUTES {
        let _ = writeln!(
            out,
            "(the targets are set for {GOAL_USERS} users and {GOAL_CUSTOM_ATTRIBUTES} custom attributes; \
             this run used {} users and {attributes}: indicative only)",
            settings.users
        );
    }
    let (measured, outcome) = post_cost(report);
    goal_line(&mut out, &post_goal(attributes), &measured, &outcome);
    match report.phase(Phase::FilterCustom) {
        Some(p) => {
            let p99 = p.result.quantile_ms(0.99);
            goal_line(
                &mut out,
                filter_goal,
                &format!("p99 {} ms ({:.0} req/s)", ms(p99), p.result.ops_per_sec()),
                &verdict(
                    p99.is_some_and(|v| v < GOAL_CUSTOM_FILTER_P99_MS),
                    p.result.errors,
                ),
            );
        }
        None => goal_line(&mut out, filter_goal, "not measured", "MISS"),
    }
    let _ = writeln!(
        out,
        "(cost = plain POST/s / custom POST/s: at a fixed concurrency, the ratio of mean time per POST; \
         phases 1 and 1b ran in alternating blocks of the same run)"
    );
    let cpu = report
        .phase(Phase::Create)
        .and_then(|p| p.server_cpu_ms_per_request())
        .zip(
            report
                .phase(Phase::CreateCustom)
                .and_then(|p| p.server_cpu_ms_per_request()),
        );
    if let Some((plain, custom)) = cpu {
        let _ = writeln!(
            out,
            "(server CPU per POST: plain {plain:.3} ms, +{attributes} custom {custom:.3} ms: {})",
            ratio(custom, plain).map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"))
        );
    }
    out
}

/// The cost of a custom POST relative to a plain one, as (measured text,
/// verdict).
fn post_cost(report: &TargetReport) -> (String, String) {
    let (Some(plain), Some(custom)) = (
        report.phase(Phase::Create),
        report.phase(Phase::CreateCustom),
    ) else {
        return ("not measured".to_owned(), "MISS".to_owned());
    };
    let (plain, custom) = (&plain.result, &custom.result);
    let Some(cost) = ratio(plain.ops_per_sec(), custom.ops_per_sec()) else {
        return (
            "not measured (no custom POST succeeded)".to_owned(),
            "MISS".to_owned(),
        );
    };
    let p50 = plain
        .quantile_ms(0.5)
        .zip(custom.quantile_ms(0.5))
        .and_then(|(plain, custom)| ratio(custom, plain))
        .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
    (
        format!(
            "cost {cost:.2}x ({:.0} vs {:.0} POST/s; p50 {p50})",
            plain.ops_per_sec(),
            custom.ops_per_sec()
        ),
        verdict(cost <= GOAL_CUSTOM_POST_COST, plain.errors + custom.errors),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bench::PhaseReport;
    use crate::extension::Extension;
    use crate::load::{self, Bound};

    /// A phase with `ok` requests of 2 ms and `errors` failures over `secs`.
    fn phase(phase: Phase, ok: u64, errors: u64, secs: f64) -> PhaseReport {
        let mut result = load::empty_result(32).unwrap();
        for _ in 0..ok {
            result.record(Ok(10), Duration::from_millis(2));
        }
        for _ in 0..errors {
            result.record(Err("boom".to_owned()), Duration::from_millis(2));
        }
        result.elapsed = Duration::from_secs_f64(secs);
        PhaseReport {
            phase,
            result,
            memory_after: None,
            server_cores: None,
            client_cores: None,
        }
    }

    fn target(extension: Option<Extension>, phases: Vec<PhaseReport>) -> TargetReport {
        TargetReport {
            name: "muster".to_owned(),
            base: "http://127.0.0.1:1/scim/v2".to_owned(),
            pid: None,
            concurrency: 32,
            extension,
            phases,
            notes: Vec::new(),
            memory_end: None,
        }
    }

    fn settings(extension: Option<Extension>) -> Settings {
        Settings {
            users: 100_000,
            concurrency: 32,
            read_bound: Bound {
                requests: None,
                duration: Duration::from_secs(1),
            },
            max_phase: Duration::from_secs(1),
            group_size: 10_000,
            group_batch: 1_000,
            group_patches: 100,
            group_add: 100,
            group_rebuild_every: 10,
            extension,
            seed: 1,
            tag: "t".to_owned(),
        }
    }

    /// Checks that the line of `text` starting with `goal` ends with
    /// `verdict`.
    fn check_verdict(text: &str, goal: &str, verdict: &str) {
        let line = text.lines().find(|l| l.starts_with(goal)).unwrap();
        assert!(line.ends_with(&format!(" {verdict}")), "{line}");
    }

    #[test]
    fn custom_post_cost_is_the_throughput_ratio() {
        for (custom_secs, custom_errors, expected) in [
            (1.2, 0, "PASS"),
            (1.3, 0, "PASS"),
            (1.5, 0, "MISS"),
            (1.2, 2, "MISS (2 errors)"),
        ] {
            let report = target(
                Extension::new(20),
                vec![
                    phase(Phase::Create, 1000, 0, 1.0),
                    phase(Phase::CreateCustom, 1000, custom_errors, custom_secs),
                ],
            );
            let (measured, outcome) = post_cost(&report);
            assert_eq!(outcome, expected, "{measured}");
            assert!(
                measured.starts_with(&format!("cost {custom_secs:.2}x")),
                "{measured}"
            );
        }
    }

    #[test]
    fn custom_goals_cover_both_targets() {
        let extension = Extension::new(20);
        let report = target(
            extension,
            vec![
                phase(Phase::Create, 1000, 0, 1.0),
                phase(Phase::CreateCustom, 1000, 0, 1.1),
                phase(Phase::FilterCustom, 1000, 0, 0.1),
            ],
        );
        let text = custom_goals(&report, &settings(extension));
        check_verdict(&text, "POST +20 custom attrs", "PASS");
        check_verdict(&text, "filter custom eq p99 < 5 ms", "PASS");
        assert!(!text.contains("indicative only"));

        let unmeasured = custom_goals(&target(extension, Vec::new()), &settings(extension));
        check_verdict(&unmeasured, "POST +20 custom attrs", "MISS");
        check_verdict(&unmeasured, "filter custom eq", "MISS");

        let not_asked = custom_goals(&target(None, Vec::new()), &settings(None));
        assert!(not_asked.contains("use --custom-attributes 20"));
        check_verdict(&not_asked, "filter custom eq", "-");
    }

    #[test]
    fn python_ratio_ignores_the_custom_phases() {
        let issue4 = || {
            Phase::ISSUE4
                .iter()
                .map(|&p| phase(p, 1000, 0, 1.0))
                .collect::<Vec<_>>()
        };
        let mut muster_phases = issue4();
        muster_phases.push(phase(Phase::CreateCustom, 1000, 0, 1.0));
        muster_phases.push(phase(Phase::FilterCustom, 1000, 0, 1.0));
        let muster = target(Extension::new(20), muster_phases);
        let mut python = target(None, issue4());
        python.name = "scim2-server".to_owned();
        for p in &mut python.phases {
            p.result.elapsed = Duration::from_secs(30);
        }
        let text = goals(&muster, Some(&python), &settings(Extension::new(20)));
        check_verdict(&text, ">= 20x scim2-server", "PASS");
    }

    #[test]
    fn verdicts() {
        for (met, errors, expected) in [
            (true, 0, "PASS"),
            (true, 3, "MISS (3 errors)"),
            (false, 0, "MISS"),
        ] {
            assert_eq!(verdict(met, errors), expected);
        }
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(40.0, 2.0), Some(20.0));
        assert_eq!(ratio(1.0, 0.0), None);
    }
}
