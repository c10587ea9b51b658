//! `http.route` when no route pattern matched: Beyla's default `heuristic`
//! mode replaces path segments that look like identifiers with `*`.

const WILDCARD: &str = "*";
/// Hex segments at least this long are taken as identifiers (hashes, object ids).
const MIN_HEX_ID_LEN: usize = 8;

fn looks_like_id(segment: &str) -> bool {
    let b = segment.as_bytes();
    if b.is_empty() {
        return false;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let is_uuid = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    is_uuid
        || (b.len() >= MIN_HEX_ID_LEN
            && b.iter().all(u8::is_ascii_hexdigit)
            && b.iter().any(u8::is_ascii_digit))
}

/// `/users/42/orders/9f86d081` -> `/users/*/orders/*`.
pub fn heuristic_route(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if looks_like_id(segment) {
            WILDCARD
        } else {
            segment
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn identifiers_become_wildcards() {
        assert_eq!(heuristic_route("/users/42"), "/users/*");
        assert_eq!(heuristic_route("/health"), "/health");
        assert_eq!(heuristic_route("/"), "/");
        assert_eq!(heuristic_route("/a/9f86d081884c7d65/b"), "/a/*/b");
        assert_eq!(
            heuristic_route("/u/123e4567-e89b-12d3-a456-426614174000"),
            "/u/*"
        );
        assert_eq!(heuristic_route("/users/ka-1"), "/users/ka-1");
        assert_eq!(
            heuristic_route("/deadbeef"),
            "/deadbeef",
            "hex words without digits stay"
        );
        assert_eq!(heuristic_route("/v2/items/"), "/v2/items/");
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
}
