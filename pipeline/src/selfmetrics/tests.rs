use super::*;

/// The documentation lists every counter the endpoint serves.
#[test]
fn docs_list_every_counter() {
    let docs = include_str!("../../../docs/running.md");
    for family in FAMILIES {
        let total = format!("{}_total", family.name);
        assert!(
            docs.contains(&total),
            "docs/running.md does not list {total}"
        );
        if let Some(label) = family.label {
            for (value, _) in family.members {
                assert!(
                    docs.contains(&format!("{label}=\"{value}\"")),
                    "docs/running.md does not list {total}{{{label}=\"{value}\"}}"
                );
            }
        }
    }
}

#[test]
fn every_counter_is_in_exactly_one_family() {
    let mut seen = Vec::new();
    for family in FAMILIES {
        for (_, source) in family.members {
            assert!(!seen.contains(source), "{source:?} is declared twice");
            seen.push(*source);
        }
    }
    assert_eq!(seen.len(), COUNTERS + KernelDrop::ALL.len());
}

#[test]
fn summary_shows_every_counter_with_its_value() {
    let m = SelfMetrics::default();
    m.add(Counter::EventsRead, 7);
    m.anomaly(Anomaly::OrphanResponse);
    m.anomaly(Anomaly::Lost { bytes: 3 });
    let kernel = KernelDropCounts::read(|d| u64::from(d == KernelDrop::TlsUnknownConnection));
    let line = Summary(&m, kernel).to_string();
    assert!(line.starts_with("events_read=7 spans_created=0 kernel_drops(ringbuf_full=0 "));
    for part in [
        "tls_unknown_connection=1)",
        "parse_errors=1",
        "orphan_responses=1",
        "connections_unsupported=0",
        "otlp_spans_dropped(queue_full=0 shutdown=0 service_limit=0 rejected=0)",
    ] {
        assert!(line.contains(part), "{part} missing: {line}");
    }
}
