//! Tests of the routes decorator: heuristic, patterns, ignore modes, unmatched modes.

use super::cardinality::{MAX_TRACKED_DEPTH, MAX_TRACKED_NODES, MAX_TRACKED_SEGMENT_LEN};
use super::*;
use proptest::prelude::*;

fn heuristic_route_with(path: &str, wildcard: &str) -> String {
    let mut out = String::new();
    push_heuristic_route(path, wildcard, &mut out);
    out
}

/// The heuristic with the default wildcard.
fn heuristic_route(path: &str) -> String {
    heuristic_route_with(path, WILDCARD)
}

/// Beyla's documented example: ids of letters only go too.
#[test]
fn beylas_documented_examples() {
    assert_eq!(
        heuristic_route("/document/d/CfMkAGbE_aivhFydEpaRafPuGWbmHfG/edit"),
        "/document/d/*/edit",
        "no numbers in the id"
    );
    assert_eq!(
        heuristic_route("/document/d/C2fMkAGb3E_aivhFyd5EpaRafP123uGWbmHfG/edit"),
        "/document/d/*/edit"
    );
}

#[test]
fn identifiers_become_wildcards() {
    let table = [
        ("/users/42", "/users/*"),
        ("/health", "/health"),
        ("/", "/"),
        ("/a/9f86d081884c7d65/b", "/a/*/b"),
        ("/u/123e4567-e89b-12d3-a456-426614174000", "/u/*"),
        ("/users/ka-1", "/users/*"),
        ("/users/deadbeef42", "/users/*"),
        ("/users/alice/orders", "/users/alice/orders"),
        (
            "/api/v1/checkout-session/items",
            "/api/v1/checkout-session/items",
        ),
        ("/v2/items/", "/v2/items/"),
        ("/v22/items", "/*/items"),
        ("/2fa/setup", "/*/setup"),
        ("/static/app.css", "/static/app.css"),
        ("/users/xkcdqzv", "/users/*"),
        ("/users/id-3fa8c1", "/users/*"),
        ("/files/-hidden", "/files/*"),
        ("/a//b", "/a//b"),
        ("/caf\u{e9}/menu", "/*/menu"),
        ("/search&q=1", "/search"),
    ];
    for (path, route) in table {
        assert_eq!(heuristic_route(path), route, "{path}");
    }
    assert_eq!(
        heuristic_route("/a/b/c/d/e/f/g/h/i/j/k/l"),
        "/a/b/c/d/e/f/g/h/i",
        "cut before the tenth /, as Beyla does"
    );
}

proptest! {
    #[test]
    fn numeric_ids_collapse_to_one_route(ids in proptest::collection::vec(0u64..u64::MAX, 1..20)) {
        for id in ids {
            prop_assert_eq!(heuristic_route(&format!("/user/{id}/basket")), "/user/*/basket");
        }
    }

    #[test]
    fn segment_count_is_kept(path in "(/[a-z0-9-]{0,12}){0,6}") {
        prop_assert_eq!(heuristic_route(&path).matches('/').count(), path.matches('/').count());
    }
}

fn routes(settings: RoutesSettings) -> Routes {
    Routes::new(settings).expect("valid patterns")
}

fn with_patterns(patterns: &[&str], unmatched: Unmatched) -> Routes {
    routes(RoutesSettings {
        patterns: patterns.iter().map(|p| p.to_string()).collect(),
        unmatched,
        ..RoutesSettings::default()
    })
}

fn route_of(routes: &mut Routes, path: &str) -> Option<String> {
    routes.decide(path).route.map(|r| r.to_string())
}

fn low_cardinality(max: usize) -> Unmatched {
    Unmatched::LowCardinality {
        max_segment_cardinality: max,
    }
}

#[test]
fn defaults() {
    let settings = RoutesSettings::default();
    assert!(settings.patterns.is_empty() && settings.ignored_patterns.is_empty());
    assert_eq!(settings.ignore_mode, IgnoreMode::All);
    assert_eq!(settings.unmatched, Unmatched::Heuristic);
    assert_eq!(settings.wildcard_char, "*");
    let mut routes = routes(settings);
    assert_eq!(
        routes.decide("/users/42"),
        RouteDecision {
            route: Some("/users/*".into()),
            traces: true,
            metrics: true
        }
    );
}

#[test]
fn patterns_match_whole_segments() {
    let mut routes = with_patterns(
        &[
            "/user/{id}",
            "/item/:id",
            "/api/v1/resources/{resource_id}",
            "/user/{id}/basket/{product}",
            "/",
            "/written/with/slash/",
        ],
        Unmatched::Unset,
    );
    let table: &[(&str, Option<&str>)] = &[
        ("/user/1", Some("/user/{id}")),
        ("/user/abc", Some("/user/{id}")),
        ("/user/1/", Some("/user/{id}")),
        ("/item/7", Some("/item/:id")),
        ("/item/7/", Some("/item/:id")),
        (
            "/api/v1/resources/42",
            Some("/api/v1/resources/{resource_id}"),
        ),
        ("/user/1/basket/3", Some("/user/{id}/basket/{product}")),
        ("/user/1/basket/3/", Some("/user/{id}/basket/{product}")),
        ("/", Some("/")),
        ("/written/with/slash", Some("/written/with/slash/")),
        ("/written/with/slash/", Some("/written/with/slash/")),
        // Unmatched: segment count, literal, empty parameter value.
        ("/user", None),
        ("/user/", None),
        ("/user//", None),
        ("/user/1/2", None),
        ("/user/1//", None),
        ("/users/1", None),
        ("/User/1", None),
        ("/user/1/basket", None),
        ("/api/v1/resources", None),
        ("/api/v2/resources/1", None),
        ("", None),
        ("user/1", None),
        ("*", None),
    ];
    for (path, want) in table {
        assert_eq!(route_of(&mut routes, path).as_deref(), *want, "{path}");
    }
}

#[test]
fn first_matching_pattern_wins() {
    let mut routes = with_patterns(
        &["/user/me", "/user/{id}", "/user/:name", "/user/*"],
        Unmatched::Unset,
    );
    assert_eq!(
        route_of(&mut routes, "/user/me").as_deref(),
        Some("/user/me")
    );
    assert_eq!(
        route_of(&mut routes, "/user/42").as_deref(),
        Some("/user/{id}")
    );
    assert_eq!(
        route_of(&mut routes, "/user/42/x").as_deref(),
        Some("/user/*")
    );
    assert_eq!(route_of(&mut routes, "/user").as_deref(), Some("/user/*"));

    let mut reversed = with_patterns(&["/user/{id}", "/user/me"], Unmatched::Unset);
    assert_eq!(
        route_of(&mut reversed, "/user/me").as_deref(),
        Some("/user/{id}")
    );
}

#[test]
fn wildcards() {
    let mut routes = with_patterns(
        &["/a/*/c", "/static/**", "/v1/*", "/api*"],
        Unmatched::Unset,
    );
    let table: &[(&str, Option<&str>)] = &[
        ("/a/b/c", Some("/a/*/c")),
        ("/a//c", None),
        ("/a/b/c/d", None),
        ("/static", Some("/static/**")),
        ("/static/", Some("/static/**")),
        ("/static/app.js", Some("/static/**")),
        ("/static/css/site.css", Some("/static/**")),
        ("/staticky", None),
        ("/v1", Some("/v1/*")),
        ("/v1/users/3", Some("/v1/*")),
        ("/api", Some("/api*")),
        ("/apiv2/x", Some("/api*")),
        ("/api/x", Some("/api*")),
        ("/ap", None),
    ];
    for (path, want) in table {
        assert_eq!(route_of(&mut routes, path).as_deref(), *want, "{path}");
    }
    let mut everything = with_patterns(&["/**"], Unmatched::Unset);
    for path in ["/", "/a", "/a/b/c/"] {
        assert_eq!(route_of(&mut everything, path).as_deref(), Some("/**"));
    }
}

#[test]
fn bad_patterns_are_refused() {
    let table = [
        ("/a/{", "invalid route pattern \"/a/{\": unclosed '{'"),
        ("a/b", "invalid route pattern \"a/b\": must start with '/'"),
        ("", "invalid route pattern \"\": must start with '/'"),
        ("/a/{}", "invalid route pattern \"/a/{}\": empty parameter name"),
        ("/a/:", "invalid route pattern \"/a/:\": empty parameter name"),
        (
            "/a/{id}x",
            "invalid route pattern \"/a/{id}x\": unexpected text after '}'",
        ),
        (
            "/a/{b/c}",
            "invalid route pattern \"/a/{b/c}\": unclosed '{'",
        ),
        (
            "/a/x{id}",
            "invalid route pattern \"/a/x{id}\": '{' must start a segment",
        ),
        ("/a/id}", "invalid route pattern \"/a/id}\": unmatched '}'"),
        (
            "/a/{x{y}",
            "invalid route pattern \"/a/{x{y}\": unexpected brace in parameter name",
        ),
        (
            "/**/a",
            "invalid route pattern \"/**/a\": '**' must be the last segment",
        ),
        (
            "/a*/b",
            "invalid route pattern \"/a*/b\": '*' must be a whole segment or the pattern's last character",
        ),
    ];
    for (bad, message) in table {
        for settings in [
            RoutesSettings {
                patterns: vec!["/ok/{id}".into(), bad.into()],
                ..RoutesSettings::default()
            },
            RoutesSettings {
                ignored_patterns: vec![bad.into()],
                ..RoutesSettings::default()
            },
        ] {
            let error = Routes::new(settings).expect_err(bad);
            assert_eq!(error.pattern, bad);
            assert_eq!(error.to_string(), message);
        }
    }
}

#[test]
fn ignore_modes() {
    let table = [
        (IgnoreMode::All, false, false),
        (IgnoreMode::Traces, false, true),
        (IgnoreMode::Metrics, true, false),
    ];
    for (mode, traces, metrics) in table {
        let mut routes = routes(RoutesSettings {
            patterns: vec!["/user/{id}".into()],
            ignored_patterns: vec!["/health".into(), "/metrics".into(), "/static/**".into()],
            ignore_mode: mode,
            ..RoutesSettings::default()
        });
        for path in ["/health", "/health/", "/metrics", "/static/a/b.css"] {
            let decision = routes.decide(path);
            assert_eq!(
                (decision.traces, decision.metrics),
                (traces, metrics),
                "{mode:?} {path}"
            );
            // A request dropped from both gets no route computed.
            assert_eq!(
                decision.route.is_some(),
                traces || metrics,
                "{mode:?} {path}"
            );
        }
        assert_eq!(
            routes.decide("/user/1"),
            RouteDecision {
                route: Some("/user/{id}".into()),
                traces: true,
                metrics: true
            },
            "{mode:?}"
        );
        assert_eq!(
            routes.decide("/healthz"),
            RouteDecision {
                route: Some("/healthz".into()),
                traces: true,
                metrics: true
            },
            "{mode:?}"
        );
    }
}

#[test]
fn ignored_and_matched_keeps_the_pattern_route() {
    let mut routes = routes(RoutesSettings {
        patterns: vec!["/health".into()],
        ignored_patterns: vec!["/health".into()],
        ignore_mode: IgnoreMode::Traces,
        ..RoutesSettings::default()
    });
    assert_eq!(
        routes.decide("/health"),
        RouteDecision {
            route: Some("/health".into()),
            traces: false,
            metrics: true
        }
    );
}

#[test]
fn unmatched_modes() {
    let path = "/users/42/orders/9f86d081";
    let table = [
        (Unmatched::Heuristic, Some("/users/*/orders/*")),
        (Unmatched::Path, Some(path)),
        (Unmatched::Wildcard, Some("/**")),
        (low_cardinality(DEFAULT_MAX_SEGMENT_CARDINALITY), Some(path)),
        (low_cardinality(0), Some("/*/*/*/*")),
        (Unmatched::Unset, None),
    ];
    for (unmatched, want) in table {
        let mut routes = with_patterns(&["/user/{id}"], unmatched);
        assert_eq!(
            route_of(&mut routes, path).as_deref(),
            want,
            "{unmatched:?}"
        );
        assert_eq!(
            route_of(&mut routes, "/user/5").as_deref(),
            Some("/user/{id}"),
            "{unmatched:?}"
        );
    }
}

#[test]
fn wildcard_char_is_used_by_heuristic_and_low_cardinality() {
    for (unmatched, want) in [
        (Unmatched::Heuristic, "/users/_/x"),
        (low_cardinality(0), "/_/_/_"),
    ] {
        let mut routes = routes(RoutesSettings {
            unmatched,
            wildcard_char: "_".into(),
            ..RoutesSettings::default()
        });
        assert_eq!(route_of(&mut routes, "/users/42/x").as_deref(), Some(want));
    }
    assert_eq!(heuristic_route_with("/a/1/b/2", "{id}"), "/a/{id}/b/{id}");
}

#[test]
fn low_cardinality_rule() {
    let mut routes = with_patterns(&[], low_cardinality(3));
    let mut route = |path: &str| route_of(&mut routes, path).unwrap();
    // The first three distinct values under /user keep their name...
    assert_eq!(route("/user/a"), "/user/a");
    assert_eq!(route("/user/b"), "/user/b");
    assert_eq!(route("/user/a"), "/user/a");
    assert_eq!(route("/user/c"), "/user/c");
    // ...the fourth and later ones do not, and share one subtree.
    assert_eq!(route("/user/d"), "/user/*");
    assert_eq!(route("/user/e"), "/user/*");
    assert_eq!(route("/user/d/orders"), "/user/*/orders");
    // Values seen before the limit keep their route for good.
    assert_eq!(route("/user/a"), "/user/a");
    assert_eq!(route("/user/c/orders"), "/user/c/orders");
    // Each position is counted under its own parent route.
    assert_eq!(route("/shop/a"), "/shop/a");
    assert_eq!(route("/user/a/1"), "/user/a/1");
    assert_eq!(route("/user/b/1"), "/user/b/1");
    // The root position counts too: /user and /shop are two of three.
    assert_eq!(route("/blog"), "/blog");
    assert_eq!(route("/news"), "/*");
    // Root, no leading slash, trailing slash (an empty last value).
    assert_eq!(route("/"), "/");
    assert_eq!(route("*"), "*");
    assert_eq!(route("/user/a/"), "/user/a/");
}

#[test]
fn low_cardinality_memory_is_bounded() {
    let mut routes = with_patterns(&[], low_cardinality(usize::MAX));
    // Root and /user are two nodes; the rest fit under /user.
    let fit = MAX_TRACKED_NODES - 2;
    for id in 0..fit + 100 {
        let want = if id < fit {
            format!("/user/{id}")
        } else {
            "/user/*".to_owned()
        };
        assert_eq!(route_of(&mut routes, &format!("/user/{id}")), Some(want));
    }
    // Known routes still resolve; new ones fall back to the heuristic.
    assert_eq!(route_of(&mut routes, "/user/7").as_deref(), Some("/user/7"));
    assert_eq!(
        route_of(&mut routes, "/other/9f86d081").as_deref(),
        Some("/other/*")
    );
    let UnmatchedState::LowCardinality(tree) = &routes.unmatched else {
        unreachable!()
    };
    assert_eq!(tree.node_count(), MAX_TRACKED_NODES);
}

#[test]
fn low_cardinality_depth_and_segment_length_are_bounded() {
    let mut routes = with_patterns(&[], low_cardinality(10));
    let deep = "/a".repeat(MAX_TRACKED_DEPTH);
    assert_eq!(route_of(&mut routes, &deep), Some(deep.clone()));
    let too_deep = format!("{deep}/1");
    assert_eq!(
        route_of(&mut routes, &too_deep).as_deref(),
        Some("/a/a/a/a/a/a/a/a/a"),
        "heuristic, which cuts before the tenth /"
    );
    let long = format!("/x/{}", "y".repeat(MAX_TRACKED_SEGMENT_LEN + 1));
    assert_eq!(route_of(&mut routes, &long).as_deref(), Some("/x/*"));
    let fits = format!("/x/{}", "y".repeat(MAX_TRACKED_SEGMENT_LEN));
    assert_eq!(route_of(&mut routes, &fits), Some(fits.clone()));
}

#[test]
fn fully_ignored_requests_do_not_feed_low_cardinality() {
    let mut routes = routes(RoutesSettings {
        ignored_patterns: vec!["/health/*".into()],
        unmatched: low_cardinality(1),
        ..RoutesSettings::default()
    });
    assert_eq!(routes.decide("/health/a").route, None);
    assert_eq!(route_of(&mut routes, "/x").as_deref(), Some("/x"));
    assert_eq!(route_of(&mut routes, "/y").as_deref(), Some("/*"));
}

fn any_unmatched() -> impl Strategy<Value = Unmatched> {
    prop_oneof![
        Just(Unmatched::Heuristic),
        Just(Unmatched::Path),
        Just(Unmatched::Wildcard),
        (0usize..20).prop_map(low_cardinality),
        Just(Unmatched::Unset),
    ]
}

const PATH: &str = "(/[a-zA-Z0-9_.-]{0,12}){0,8}/?";

proptest! {
    #[test]
    fn heuristic_mode_keeps_or_replaces_whole_segments(
        segments in proptest::collection::vec(prop_oneof!["[0-9]{1,20}", "[a-z_-]{0,10}"], 0..8),
        wildcard in "[*#_]",
    ) {
        let mut routes = routes(RoutesSettings { wildcard_char: wildcard.clone(), ..RoutesSettings::default() });
        let path = format!("/{}", segments.join("/"));
        let route = route_of(&mut routes, &path).unwrap();
        let out: Vec<&str> = route.split('/').collect();
        let inp: Vec<&str> = path.split('/').collect();
        prop_assert_eq!(out.len(), inp.len());
        for (o, i) in out.iter().zip(&inp) {
            if !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()) {
                prop_assert_eq!(*o, wildcard.as_str());
            } else {
                prop_assert!(o == i || *o == wildcard.as_str(), "{o} for {i}");
            }
        }
    }

    #[test]
    fn path_mode_is_the_identity(path in PATH) {
        let mut routes = with_patterns(&[], Unmatched::Path);
        prop_assert_eq!(route_of(&mut routes, &path), Some(path));
    }

    #[test]
    fn wildcard_mode_is_constant(path in PATH) {
        let mut routes = with_patterns(&["/never"], Unmatched::Wildcard);
        let route = route_of(&mut routes, &path);
        prop_assert_eq!(route.as_deref(), Some("/**"));
    }

    #[test]
    fn unset_mode_has_no_route(path in PATH) {
        let mut routes = with_patterns(&["/never"], Unmatched::Unset);
        let decision = routes.decide(&path);
        prop_assert_eq!(decision, RouteDecision { route: None, traces: true, metrics: true });
    }

    #[test]
    fn health_is_ignored_per_mode(
        mode in prop_oneof![Just(IgnoreMode::All), Just(IgnoreMode::Traces), Just(IgnoreMode::Metrics)],
        unmatched in any_unmatched(),
        other in "/[a-z]{1,6}/[0-9]{1,4}",
    ) {
        let mut routes = routes(RoutesSettings {
            ignored_patterns: vec!["/health".into()],
            ignore_mode: mode,
            unmatched,
            ..RoutesSettings::default()
        });
        let health = routes.decide("/health");
        prop_assert_eq!(health.traces, mode == IgnoreMode::Metrics);
        prop_assert_eq!(health.metrics, mode == IgnoreMode::Traces);
        let kept = routes.decide(&other);
        prop_assert!(kept.traces && kept.metrics);
    }

    #[test]
    fn parameters_match_any_non_empty_segment(
        segments in proptest::collection::vec("[a-zA-Z0-9_.:~-]{0,8}", 1..6),
        trailing_slash in any::<bool>(),
    ) {
        let pattern: String = (0..segments.len())
            .map(|i| if i % 2 == 0 { format!("/{{p{i}}}") } else { format!("/:p{i}") })
            .collect();
        let mut routes = with_patterns(&[&pattern], Unmatched::Unset);
        let path = format!("/{}{}", segments.join("/"), if trailing_slash { "/" } else { "" });
        let want = segments.iter().all(|s| !s.is_empty());
        prop_assert_eq!(route_of(&mut routes, &path).is_some(), want, "{} {}", pattern, path);
    }
}

// A thousand requests per case: fewer cases.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn low_cardinality_caps_routes_per_position(
        max in 1usize..20,
        // Some small ids, so that kept values come back.
        ids in proptest::collection::vec(prop_oneof![any::<u64>(), 0u64..30], 1000),
    ) {
        let mut routes = with_patterns(&[], low_cardinality(max));
        let mut kept: Vec<u64> = Vec::new();
        let mut distinct = std::collections::HashSet::new();
        for id in ids {
            let route = route_of(&mut routes, &format!("/user/{id}")).unwrap();
            if !kept.contains(&id) && kept.len() < max {
                kept.push(id);
            }
            if kept.contains(&id) {
                prop_assert_eq!(&route, &format!("/user/{id}"));
            } else {
                prop_assert_eq!(&route, "/user/*");
            }
            distinct.insert(route);
        }
        prop_assert!(distinct.len() <= max + 1);
    }

    #[test]
    fn a_pattern_gives_one_route_whatever_the_mode(
        unmatched in any_unmatched(),
        ids in proptest::collection::vec(prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<u128>().prop_map(|n| format!("{n:x}")),
            "[a-z]{1,8}",
        ], 1000),
    ) {
        let mut routes = with_patterns(&["/user/{id}"], unmatched);
        let distinct: std::collections::HashSet<_> = ids
            .iter()
            .map(|id| route_of(&mut routes, &format!("/user/{id}")))
            .collect();
        prop_assert_eq!(distinct.len(), 1);
        let want = Some("/user/{id}".to_owned());
        prop_assert!(distinct.contains(&want));
    }
}
