use super::*;

/// The documentation lists every counter and gauge the endpoint serves.
#[test]
fn docs_list_every_counter() {
    let docs = include_str!("../../../docs/running.md");
    for family in FAMILIES {
        // A gauge is listed as `name` or `name{...}`, a counter family as name_total.
        let shown = if family.is_gauge() {
            family.name.to_string()
        } else {
            format!("{}_total", family.name)
        };
        let listed = if family.is_gauge() {
            docs.contains(&format!("`{shown}`")) || docs.contains(&format!("`{shown}{{"))
        } else {
            docs.contains(&shown)
        };
        assert!(listed, "docs/running.md does not list {shown}");
        if let Some(label) = family.label {
            for (value, _) in family.members {
                assert!(
                    docs.contains(&format!("{label}=\"{value}\"")),
                    "docs/running.md does not list {shown}{{{label}=\"{value}\"}}"
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
    assert_eq!(seen.len(), COUNTERS + KernelDrop::ALL.len() + GAUGES);
}

#[test]
fn a_family_is_all_counters_or_all_gauges() {
    for family in FAMILIES {
        let gauges = family
            .members
            .iter()
            .filter(|(_, source)| matches!(source, Source::Held(_)))
            .count();
        assert!(
            gauges == 0 || gauges == family.members.len(),
            "{} mixes counters and gauges",
            family.name
        );
    }
}

#[test]
fn summary_shows_every_counter_with_its_value() {
    let m = SelfMetrics::default();
    m.add(Counter::EventsRead, 7);
    m.anomaly(Anomaly::OrphanResponse);
    m.anomaly(Anomaly::Lost { bytes: 3 });
    m.set(Gauge::KubernetesPods, 5);
    m.set(Gauge::KubernetesPods, 4);
    let kernel = KernelDropCounts::read(|d| u64::from(d == KernelDrop::TlsUnknownConnection));
    let line = Summary(&m, kernel).to_string();
    assert!(line.starts_with("events_read=7 spans_created=0 kernel_drops(ringbuf_full=0 "));
    for part in [
        "tls_unknown_connection=1)",
        "parse_errors=1",
        "orphan_responses=1",
        "connections_unsupported=0",
        "otlp_spans_dropped(queue_full=0 shutdown=0 service_limit=0 rejected=0)",
        "kubernetes_objects(pods=4 replicasets=0)",
    ] {
        assert!(line.contains(part), "{part} missing: {line}");
    }
}
