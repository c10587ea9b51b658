//! The control plane: one thread running smol tasks for everything that is
//! not the hot path (exporters' queues, batching, retries and timeouts, the
//! metrics endpoint, signals, discovery's loop). The ring-buffer reader keeps
//! a thread of its own and never waits on these tasks.

pub mod memory;

use std::future::Future;
use std::sync::Arc;

use smol::{Executor, Task};

/// A handle on the control plane's executor; cheap to clone. The thread ends
/// when the last handle is dropped.
#[derive(Clone)]
pub struct Control(Arc<Inner>);

struct Inner {
    executor: Arc<Executor<'static>>,
    /// Closed when the last handle goes: the executor thread then returns.
    stop: async_channel::Sender<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.close();
    }
}

impl Control {
    /// Sets the allocator's policy ([`memory`]), then starts the control
    /// thread; call before starting other threads.
    pub fn start() -> std::io::Result<Self> {
        memory::tune();
        let executor = Arc::new(Executor::new());
        executor.spawn(memory::release_periodically()).detach();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let runner = Arc::clone(&executor);
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                // Ends when every handle is dropped (the channel closes).
                let _ = smol::block_on(runner.run(stopped.recv()));
            })?;
        Ok(Self(Arc::new(Inner { executor, stop })))
    }

    /// Runs `future` on the control thread.
    pub fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Task<T> {
        self.0.executor.spawn(future)
    }
}
