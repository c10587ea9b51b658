//! Reads the ring buffer without blocking the executor, handing each record
//! to the next stage by reference: nothing is copied or allocated per event.

use std::os::fd::AsFd;

use async_io::Async;
use aya::maps::{MapData, RingBuf};
use futures_lite::FutureExt;

use super::abi::{self, DecodeError};
use crate::model::KernelEvent;

/// Reads until `stop` fires, then drains what the ring still holds and returns.
pub async fn read_events<F>(
    mut ring: RingBuf<MapData>,
    stop: async_channel::Receiver<()>,
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
        if readable.or(stopped).await {
            break;
        }
    }
    while let Some(record) = ring.next() {
        sink(abi::decode(&record));
    }
}
