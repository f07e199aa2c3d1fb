//! Size baseline for async-nats: a current-thread Tokio runtime (as chatnode-tokio builds it
//! for one thread) opening a TCP connection and exchanging one line, with no NATS code.
//! `size_async_nats` minus this is what async-nats adds.
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4222".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let n = rt.block_on(async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(b"PING\r\n").await?;
        let mut buf = [0u8; 4096];
        stream.read(&mut buf).await
    })?;
    println!("read {n} bytes");
    Ok(())
}
