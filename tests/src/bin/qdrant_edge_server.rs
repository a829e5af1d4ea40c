//! The Qdrant test server as a process, for runs of `lariat` against it (the evaluation parity
//! of the Qdrant backends): `qdrant-edge-server DIR [ADDR]` serves Qdrant's gRPC services over
//! qdrant-edge shards in DIR on ADDR (127.0.0.1:6334 by default) until stopped. Its collections
//! live as long as the process.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(
        args.next()
            .context("usage: qdrant-edge-server DIR [ADDR]")?,
    );
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:6334".into());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    eprintln!("qdrant-edge-server: serving on http://{addr}");
    lariat_tests::qdrant::serve(&dir, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
