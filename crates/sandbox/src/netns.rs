//! Reaching a service inside its container's network namespace, which has only loopback
//! (or, with egress on, loopback and its veth: [`crate::egress`]).
//!
//! The miner forwards a renter's TCP connection into the container: a fresh thread joins
//! the network namespace of the container's init (`/proc/<pid>/ns/net`, with `setns(2)`),
//! connects to `127.0.0.1:<port>` there and ends. The socket stays in the namespace it
//! was created in, so the miner's other threads use it as any other. Only the miner (root
//! on the host) can join the namespace; the workload itself still sees nothing but its own
//! loopback, never the host's.

use std::{
    fs::File,
    net::{Ipv4Addr, SocketAddr, TcpStream},
    path::Path,
    time::Duration,
};

/// Opens the network namespace of process `pid`. Holding the file keeps that namespace (not
/// whatever later gets the pid) the one [`connect_in`] joins.
pub fn open(pid: u32) -> Result<File, String> {
    let ns_path = Path::new("/proc").join(pid.to_string()).join("ns/net");
    File::open(&ns_path).map_err(|e| format!("{}: {e}", ns_path.display()))
}

/// Connects to `127.0.0.1:port` in the network namespace of process `pid` (the container's
/// init, from `runc state`), within `timeout`.
pub fn connect_in_netns(pid: u32, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    connect_in(&open(pid)?, port, timeout)
}

/// Connects to `127.0.0.1:port` in the network namespace `ns` (see [`open`]), within
/// `timeout`.
pub fn connect_in(ns: &File, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    run_in(ns, move || {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| format!("connect to port {port} in the container: {e}"))
    })?
}

/// Runs `f` on a fresh thread that joined the network namespace `ns` (and ends with it):
/// sockets it makes and processes it spawns live in that namespace; the caller's threads
/// are untouched.
pub fn run_in<T: Send + 'static>(
    ns: &File,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let ns = ns
        .try_clone()
        .map_err(|e| format!("network namespace: {e}"))?;
    let worker = std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || -> Result<T, String> {
            join_netns(&ns)?;
            Ok(f())
        })
        .map_err(|e| format!("thread: {e}"))?;
    worker
        .join()
        .map_err(|_| "the netns thread panicked".to_string())?
}

/// Moves the calling thread (only it) into the network namespace `ns`.
fn join_netns(ns: &File) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    // SAFETY: `setns` takes a file descriptor and a namespace type; `ns` is an open file
    // that outlives the call, and CLONE_NEWNET changes only this thread's network
    // namespace (allowed in a multi-threaded process). No memory is passed or shared.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(format!(
            "setns into the container's network namespace: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// For tests that change the host's network (nftables, `ip_forward`, veth pairs): true when
/// the calling test already runs in a private network namespace (marked by the environment
/// variable `marker`), so its body should run; otherwise re-runs test `test` of the current
/// test binary there (`unshare -n`, loopback up), asserts that it ran and passed, and
/// returns false. Needs root and util-linux's `unshare`.
pub fn rerun_in_private_netns(test: &str, marker: &str) -> bool {
    if std::env::var_os(marker).is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(marker, "1")
        .output()
        .unwrap_or_else(|e| panic!("this test needs unshare (util-linux): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{test} in its own namespace:\n{text}");
    assert!(text.contains("1 passed"), "{test} did not run:\n{text}");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_process_is_a_clear_error() {
        // Pid 0 never has a /proc entry.
        let e = connect_in_netns(0, 80, Duration::from_millis(100)).unwrap_err();
        assert!(e.contains("/proc/0/ns/net"), "{e}");
    }

    #[test]
    fn joining_a_held_namespace_reaches_its_loopback() {
        // The sandbox runs as root (runc needs it), and so do its tests: joining a namespace
        // must work. Ours stands in for a container's.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let ns = open(std::process::id()).unwrap();
        let s = connect_in(&ns, port, Duration::from_secs(2)).unwrap();
        assert_eq!(s.peer_addr().unwrap().port(), port);
        // Nothing listening there: a clear error, not a hang or a panic. The port is the
        // client end of `s`, held (so no other process can take it) and not listening: a
        // freed listener's port could be taken by anyone meanwhile, which made this flaky.
        let held = s.local_addr().unwrap().port();
        let e = connect_in(&ns, held, Duration::from_secs(2)).unwrap_err();
        assert!(e.contains(&format!("port {held}")), "{e}");
        drop(l);
    }
}
