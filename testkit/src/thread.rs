//! The server thread shared by every target: one OS thread, one
//! current-thread tokio runtime, stopped and joined when the handle drops.
//!
//! Setup (turning std sockets into tokio ones) runs inside the runtime and
//! its error comes back to the caller, so a target either starts or says why.

use std::future::Future;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

/// Owns a server thread; dropping it stops the server and joins the thread.
#[derive(Debug)]
pub(crate) struct ServerThread {
    stop: Option<oneshot::Sender<()>>,
    join: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Starts `name` on a new thread. `setup` runs inside the runtime (so it
    /// may register sockets) and returns the server future, which runs until
    /// the handle is dropped.
    pub(crate) fn spawn<S, F>(name: &str, setup: S) -> std::io::Result<ServerThread>
    where
        S: FnOnce() -> std::io::Result<F> + Send + 'static,
        F: Future<Output = ()> + 'static,
    {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<()>>();
        let join = std::thread::Builder::new()
            .name(format!("testkit-{name}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let server = {
                    let _guard = rt.enter();
                    match setup() {
                        Ok(server) => server,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    }
                };
                let _ = ready_tx.send(Ok(()));
                rt.block_on(async move {
                    tokio::select! {
                        _ = server => {}
                        _ = stop_rx => {}
                    }
                });
                // Dropping the runtime cancels every connection task still running
                // (trickling bodies, silent connections).
                drop(rt);
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(ServerThread {
                stop: Some(stop_tx),
                join: Some(join),
            }),
            Ok(Err(e)) => {
                let _ = join.join();
                Err(e)
            }
            Err(_) => {
                let _ = join.join();
                Err(std::io::Error::other(format!(
                    "testkit-{name}: server thread died during setup"
                )))
            }
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(join) = self.join.take() {
            // A panic in the server thread is already printed; do not double-panic.
            let _ = join.join();
        }
    }
}
