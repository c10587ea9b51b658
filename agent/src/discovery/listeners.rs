//! Listening TCP sockets of the agent's own network namespace, asked of the
//! kernel over netlink (sock_diag) instead of read from /proc/net/tcp: the
//! kernel then walks only its listening table, while /proc/net/tcp walks every
//! established connection too, which made each discovery pass cost
//! milliseconds on a busy host.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Socket inode -> local port.
pub type Listeners = HashMap<u64, u16>;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const TCP_LISTEN: u32 = 10;
const NLMSG_HEADER: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, then a
/// 48-byte `inet_diag_sockid` left zero (no filter).
const REQUEST_BODY: usize = 56;
/// In `struct inet_diag_msg`: `id.idiag_sport` (big endian) and `idiag_inode`.
const MSG_SPORT: usize = 4;
const MSG_INODE: usize = 68;
const MSG_LEN: usize = 72;
/// Receive buffer: the kernel fills it with as many messages as fit.
const RECV_BUFFER: usize = 32 * 1024;

/// Every listening TCP socket (IPv4 and IPv6) of this network namespace.
pub fn own_namespace() -> io::Result<Listeners> {
    let socket = open()?;
    let mut out = Listeners::new();
    let mut buf = vec![0u8; RECV_BUFFER];
    for (seq, family) in [(1, libc::AF_INET), (2, libc::AF_INET6)] {
        send_dump_request(&socket, seq, family as u8)?;
        read_dump(&socket, &mut buf, &mut out)?;
    }
    Ok(out)
}

fn open() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked before it is owned.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a freshly opened descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn send_dump_request(socket: &OwnedFd, seq: u32, family: u8) -> io::Result<()> {
    const LEN: usize = NLMSG_HEADER + REQUEST_BODY;
    let mut msg = [0u8; LEN];
    msg[0..4].copy_from_slice(&(LEN as u32).to_ne_bytes());
    msg[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    msg[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    msg[8..12].copy_from_slice(&seq.to_ne_bytes());
    let body = &mut msg[NLMSG_HEADER..];
    body[0] = family;
    body[1] = libc::IPPROTO_TCP as u8;
    body[4..8].copy_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    // SAFETY: msg is a valid buffer of the given length; the kernel address is
    // the zeroed default sockaddr_nl.
    let sent = unsafe {
        let mut kernel: libc::sockaddr_nl = std::mem::zeroed();
        kernel.nl_family = libc::AF_NETLINK as u16;
        libc::sendto(
            socket.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            std::ptr::from_ref(&kernel).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads one dump's replies into `out` until NLMSG_DONE.
fn read_dump(socket: &OwnedFd, buf: &mut [u8], out: &mut Listeners) -> io::Result<()> {
    loop {
        // SAFETY: buf is a valid writable buffer of the given length.
        let n = unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if parse_replies(&buf[..n as usize], out)? {
            return Ok(());
        }
    }
}

/// Adds the sockets of one datagram of replies; true once the dump is done.
fn parse_replies(mut data: &[u8], out: &mut Listeners) -> io::Result<bool> {
    let truncated = || io::Error::new(io::ErrorKind::InvalidData, "truncated sock_diag reply");
    while data.len() >= NLMSG_HEADER {
        let len = u32::from_ne_bytes(data[0..4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_ne_bytes(data[4..6].try_into().expect("2 bytes"));
        if len < NLMSG_HEADER || len > data.len() {
            return Err(truncated());
        }
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = data
                    .get(NLMSG_HEADER..NLMSG_HEADER + 4)
                    .map_or(0, |b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
                return Err(io::Error::from_raw_os_error(-errno));
            }
            SOCK_DIAG_BY_FAMILY => {
                let msg = data.get(NLMSG_HEADER..len).ok_or_else(truncated)?;
                if msg.len() < MSG_LEN {
                    return Err(truncated());
                }
                let port = u16::from_be_bytes([msg[MSG_SPORT], msg[MSG_SPORT + 1]]);
                let inode =
                    u32::from_ne_bytes(msg[MSG_INODE..MSG_INODE + 4].try_into().expect("4 bytes"));
                out.insert(u64::from(inode), port);
            }
            _ => {}
        }
        // Messages are 4-byte aligned.
        let next = (len + 3) & !3;
        data = data.get(next..).unwrap_or_default();
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::unix::fs::MetadataExt;

    /// A socket this test opens is listed with its inode and port.
    #[test]
    fn finds_a_listening_socket_of_this_process() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd()))
            .expect("fd metadata")
            .ino();
        let found = own_namespace().expect("sock_diag dump");
        assert_eq!(found.get(&inode), Some(&port), "{found:?}");
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        let mut out = Listeners::new();
        let mut short = vec![0u8; NLMSG_HEADER];
        short[0..4].copy_from_slice(&100u32.to_ne_bytes());
        assert!(parse_replies(&short, &mut out).is_err());
        let tiny_len = NLMSG_HEADER + 8;
        let mut tiny_msg = vec![0u8; tiny_len];
        tiny_msg[0..4].copy_from_slice(&(tiny_len as u32).to_ne_bytes());
        tiny_msg[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        assert!(parse_replies(&tiny_msg, &mut out).is_err());
        assert!(out.is_empty());
    }
}
