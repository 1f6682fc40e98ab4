//! Simulators of the services Brevet talks to but cannot reach from a test machine, built to the
//! spec including its errors. Used by the integration tests and, later, by `brevet sim`.

pub mod cas;
pub mod chrome;
pub mod est;
pub mod fake_ca;
pub mod google;
pub mod pace;
pub mod stepca;
pub mod wallet;

/// Serves `app` on `listener` in the background until the returned sender is used or dropped.
pub(crate) fn serve_until_stopped(
    listener: tokio::net::TcpListener,
    app: axum::Router,
) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    stop
}
