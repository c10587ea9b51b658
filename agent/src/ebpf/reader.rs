//! Reads the ring buffer without blocking the executor, handing each record
//! to the next stage by reference: nothing is copied or allocated per event.

use std::os::fd::AsFd;
use std::time::Duration;

use async_io::{Async, Timer};
use aya::maps::{MapData, RingBuf};
use futures_lite::FutureExt;

use super::abi::{self, DecodeError};
use crate::model::KernelEvent;

/// With batched wake-ups the kernel stays silent until a batch is full; the
/// reader then also looks on its own this often, so a quiet service's last
/// requests are not held back for ever.
const BATCHED_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Reads until `stop` fires, then drains what the ring still holds and returns.
/// `batched`: the probes batch their wake-ups (`ebpf.wakeup_len` above 1).
pub async fn read_events<F>(
    mut ring: RingBuf<MapData>,
    stop: async_channel::Receiver<()>,
    batched: bool,
    mut sink: F,
) where
    F: FnMut(Result<KernelEvent<'_>, DecodeError>),
{
    let fd = match ring.as_fd().try_clone_to_owned().and_then(Async::new) {
        Ok(fd) => fd,
        Err(e) => {
            log::error!("cannot poll the eBPF ring buffer: {e}");
            return;
        }
    };
    loop {
        while let Some(record) = ring.next() {
            sink(abi::decode(&record));
        }
        let stopped = async {
            let _ = stop.recv().await;
            true
        };
        let readable = async { fd.readable().await.is_err() };
        let poll = async {
            if batched {
                Timer::after(BATCHED_POLL_INTERVAL).await;
            } else {
                std::future::pending::<()>().await;
            }
            false
        };
        if readable.or(stopped).or(poll).await {
            break;
        }
    }
    while let Some(record) = ring.next() {
        sink(abi::decode(&record));
    }
}
