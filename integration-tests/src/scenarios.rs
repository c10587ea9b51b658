//! Requests tests send, with the spans they must produce.

use crate::http::{Connection, Request};
use crate::spans::{Expected, Kind, Lineage};

/// A few requests over one keep-alive connection to the server on `port`
/// (process `pid`), and the server spans they must produce, named `service`.
pub fn exercise(scenario: &str, port: u16, pid: u32, service: &str) -> Vec<Expected> {
    let mut expected = Vec::new();
    let mut conn = Connection::open(port);
    for (path, status, route) in [
        ("/users/42", 200, "/users/*"),
        ("/health", 200, "/health"),
        ("/nope", 404, "/nope"),
    ] {
        let request = Request::get(path);
        let (response, window) = conn.round_trip(&request);
        assert_eq!(
            response.status,
            status,
            "[{scenario}] GET {path} on port {port} answered {}: {}",
            response.status,
            response.body_text()
        );
        expected.push(Expected {
            scenario: scenario.to_string(),
            kind: Kind::Server,
            method: "GET".into(),
            path: path.into(),
            route: route.into(),
            status,
            service: service.into(),
            pid,
            server_port: port,
            window,
            lineage: Lineage::Root,
        });
    }
    expected
}
