//! Size probe: async-nats on a current-thread Tokio runtime doing what `size_ours` does
//! (connect, subscribe, publish, receive, a request and its answer).
use futures_util::StreamExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4222".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let got = rt.block_on(async move {
        let client = async_nats::connect(format!("nats://{addr}")).await?;
        let mut sub = client.subscribe("probe.>").await?;
        let answering = client.clone();
        let mut requests = client.subscribe("probe.b").await?;
        tokio::spawn(async move {
            if let Some(m) = requests.next().await {
                if let Some(reply) = m.reply {
                    let _ = answering.publish(reply, "answer".into()).await;
                }
            }
        });
        client.publish("probe.a", "hello".into()).await?;
        let answer = client.request("probe.b", "request".into()).await?;
        let first = sub.next().await.map_or(0, |m| m.payload.len());
        Ok::<_, Box<dyn std::error::Error>>(first + answer.payload.len())
    })?;
    println!("got {got} bytes");
    Ok(())
}
