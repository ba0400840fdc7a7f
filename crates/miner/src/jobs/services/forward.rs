//! The port forwarder of one service: accepts TCP connections on the service's host port,
//! connects each into the container's network namespace
//! ([`unet_sandbox::netns::connect_in`]) and copies bytes both ways until either side
//! closes or the service stops. At most `max_connections` at once; more are closed on
//! accept. When the service stops the listener is closed, so its port refuses connections.

use std::{sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::watch};
use tracing::debug;

/// How long connecting into the container may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `listener` until `stop` turns true, forwarding to `port` in the network namespace
/// `netns` (the container's, held open since it started).
pub async fn serve(
    listener: TcpListener,
    netns: Arc<std::fs::File>,
    port: u16,
    max_connections: usize,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
    loop {
        let (mut outside, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    debug!(error = %e, "accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        if *stop.borrow() {
            return;
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "too many connections to the service; closed");
            continue;
        };
        let mut stop = stop.clone();
        let netns = netns.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let inside = tokio::task::spawn_blocking(move || {
                unet_sandbox::netns::connect_in(&netns, port, CONNECT_TIMEOUT)
            })
            .await;
            let inside = match inside {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    debug!(%peer, error = %e, "cannot reach the service");
                    return;
                }
                Err(_) => return,
            };
            let Ok(mut inside) = inside
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpStream::from_std(inside))
            else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut outside, &mut inside) => {}
                _ = stop.changed() => {}
            }
        });
    }
}
