//! Size baseline for our client: our smol runtime opening a TCP connection and exchanging one
//! line, with no NATS code. `size_ours` minus this is what our NATS client adds.
use chatnode::rt::{smol::SmolRuntime, Runtime};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4222".into());
    let rt = SmolRuntime::new();
    let r = rt.clone();
    let n = rt.block_on(1, async move {
        let (mut reader, mut writer) = r.connect(addr).await?;
        writer.write_all(b"PING\r\n").await?;
        writer.flush().await?;
        let mut buf = [0u8; 4096];
        reader.read(&mut buf).await
    })?;
    println!("read {n} bytes");
    Ok(())
}
