//! Size probe: our smol runtime and chatnode's NATS client doing what a link does at the core
//! (connect and log in, subscribe, publish, receive, a request through an inbox). Compare with
//! `size_base_smol` (the same runtime and TCP, no NATS) and `size_async_nats`.
use chatnode::link::nats::client::{open, Security};
use chatnode::link::nats::proto::{write_pub, write_sub, Credentials, ServerOp};
use chatnode::rt::{smol::SmolRuntime, Runtime};
use futures_lite::io::AsyncWriteExt;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4222".into());
    let rt = SmolRuntime::new();
    let r = rt.clone();
    let got = rt.block_on(1, async move {
        let (reader, writer) = r.connect(addr).await?;
        let mut s = open(
            reader,
            writer,
            &Security::default(),
            "probe",
            &Credentials::default(),
            1 << 20,
        )
        .await?;
        let mut out = Vec::new();
        write_sub(&mut out, "probe.>", 1);
        write_sub(&mut out, "_INBOX.probe.*", 2);
        write_pub(&mut out, "probe.a", None, b"hello");
        write_pub(&mut out, "probe.b", Some("_INBOX.probe.1"), b"request");
        s.writer.write_all(&out).await?;
        s.writer.flush().await?;
        let mut got = 0;
        while got < 2 {
            if let ServerOp::Msg(m) = s.reader.next().await? {
                got += m.payload.len();
                if let Some(reply) = m.reply {
                    out.clear();
                    write_pub(&mut out, &reply, None, b"answer");
                    s.writer.write_all(&out).await?;
                    s.writer.flush().await?;
                }
            }
        }
        Ok::<_, std::io::Error>(got)
    })?;
    println!("got {got} bytes");
    Ok(())
}
