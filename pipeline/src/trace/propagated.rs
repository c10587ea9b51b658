//! Ids the kernel gave requests when it propagates context by header
//! (`ebpf.context_propagation`), kept from their context event until the
//! span of the request they name begins. A client's ids are those of the
//! `traceparent` written into its request, so the server's agent, on another
//! node, makes its span their child; a server's are those its calls carry
//! onward. The kernel sends each just before the data of its request, on
//! the same ring, so one pending entry per connection and role suffices.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::model::{ConnId, ContextRole, KernelContext, KernelIds};
use crate::selfmetrics::{Counter, SelfMetrics};

/// Connections with ids pending at once, per role: as many as the assembler tracks.
const MAX_PENDING: usize = 65_536;

pub struct Propagated {
    /// The ids of the next server request read on a connection.
    servers: FxHashMap<ConnId, KernelIds>,
    /// The ids written into the client request sent at this start time.
    clients: FxHashMap<ConnId, (u64, KernelIds)>,
    metrics: Arc<SelfMetrics>,
}

impl Propagated {
    pub fn new(metrics: Arc<SelfMetrics>) -> Self {
        Self {
            servers: FxHashMap::default(),
            clients: FxHashMap::default(),
            metrics,
        }
    }

    pub fn on_context(&mut self, context: &KernelContext) {
        let full = match context.role {
            ContextRole::Server => insert(&mut self.servers, context.conn, context.ids),
            ContextRole::Client { start_mono_ns } => insert(
                &mut self.clients,
                context.conn,
                (start_mono_ns, context.ids),
            ),
        };
        if full {
            self.metrics.inc(Counter::PropagationContextsDropped);
        }
    }

    /// The ids of the server request starting on `conn`, if the kernel gave it some.
    pub fn server(&mut self, conn: ConnId) -> Option<KernelIds> {
        self.servers.remove(&conn)
    }

    /// The ids written into the client request whose first write started at
    /// `start_mono_ns` on `conn`; a request the kernel left alone has none.
    pub fn client(&mut self, conn: ConnId, start_mono_ns: u64) -> Option<KernelIds> {
        match self.clients.get(&conn) {
            Some(&(start, ids)) if start == start_mono_ns => {
                self.clients.remove(&conn);
                Some(ids)
            }
            _ => None,
        }
    }

    pub fn closed(&mut self, conn: ConnId) {
        self.servers.remove(&conn);
        self.clients.remove(&conn);
    }
}

/// Inserts or replaces; false when a new connection found the table full.
fn insert<V>(table: &mut FxHashMap<ConnId, V>, conn: ConnId, value: V) -> bool {
    if table.len() >= MAX_PENDING && !table.contains_key(&conn) {
        return true;
    }
    table.insert(conn, value);
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SpanId, TraceId};

    fn ids(n: u8) -> KernelIds {
        KernelIds {
            trace_id: TraceId([n; 16]),
            span_id: SpanId([n; 8]),
            parent: None,
        }
    }

    fn context(conn: u64, role: ContextRole, n: u8) -> KernelContext {
        KernelContext {
            conn: ConnId(conn),
            role,
            ids: ids(n),
        }
    }

    #[test]
    fn a_client_request_takes_the_ids_of_its_own_write_once() {
        let mut p = Propagated::new(Arc::default());
        p.on_context(&context(1, ContextRole::Client { start_mono_ns: 50 }, 7));
        assert_eq!(p.client(ConnId(1), 49), None, "another write");
        assert_eq!(p.client(ConnId(2), 50), None, "another connection");
        assert_eq!(p.client(ConnId(1), 50), Some(ids(7)));
        assert_eq!(p.client(ConnId(1), 50), None, "taken");
    }

    #[test]
    fn a_server_request_takes_the_latest_ids_of_its_connection() {
        let mut p = Propagated::new(Arc::default());
        p.on_context(&context(1, ContextRole::Server, 1));
        p.on_context(&context(1, ContextRole::Server, 2));
        assert_eq!(p.server(ConnId(1)), Some(ids(2)));
        assert_eq!(p.server(ConnId(1)), None);
        p.on_context(&context(3, ContextRole::Server, 3));
        p.closed(ConnId(3));
        assert_eq!(p.server(ConnId(3)), None);
    }

    #[test]
    fn a_full_table_counts_what_it_drops() {
        let metrics = Arc::new(SelfMetrics::default());
        let mut p = Propagated::new(Arc::clone(&metrics));
        for conn in 0..MAX_PENDING as u64 + 2 {
            p.on_context(&context(conn, ContextRole::Server, 1));
        }
        // A known connection is still updated.
        p.on_context(&context(0, ContextRole::Server, 9));
        assert_eq!(metrics.get(Counter::PropagationContextsDropped), 2);
        assert_eq!(p.server(ConnId(0)), Some(ids(9)));
    }
}
