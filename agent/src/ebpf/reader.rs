//! Reads the ring buffer without blocking the executor, handing each record
//! to the next stage by reference: nothing is copied or allocated per event.

use std::os::fd::AsFd;
use std::time::Duration;

use async_io::{Async, Timer};
use aya::maps::{MapData, RingBuf};
use futures_lite::FutureExt;

use super::abi::{self, DecodeError};
use crate::model::KernelEvent;

/// Unless the probes wake the reader for every record, it looks on its own
/// this often: the most a span waits in the ring.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Reads until `stop` fires, then drains what the ring still holds and returns.
/// `polls`: the probes do not wake the reader for every record.
pub async fn read_events<F>(
    mut ring: RingBuf<MapData>,
    stop: async_channel::Receiver<()>,
    polls: bool,
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
            if polls {
                Timer::after(POLL_INTERVAL).await;
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
