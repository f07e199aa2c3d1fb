//! async-nats, used the way its documentation shows: `connect`, `subscribe` (a Stream of
//! messages), `publish` (a command handed to the connection task, which batches the writes),
//! `request` (its own muxed inbox subscription). It runs on whatever Tokio runtime calls it:
//! the benchmark gives it the runtime chatnode-tokio builds (`TokioRuntime::build`).

use std::io;
use std::time::Instant;

use async_nats::{Client, ConnectOptions};
use bytes::Bytes;
use futures_util::StreamExt;

use std::sync::atomic::Ordering;

use crate::{Phase, DEADLINE, IDLE, SLOW_CONSUMER};

async fn connect(addr: &str, name: &str) -> io::Result<Client> {
    ConnectOptions::new()
        .name(name)
        .no_echo()
        .event_callback(|event| async move {
            if let async_nats::Event::SlowConsumer(_) = event {
                SLOW_CONSUMER.fetch_add(1, Ordering::Relaxed);
            }
        })
        .connect(format!("nats://{addr}"))
        .await
        .map_err(io::Error::other)
}

/// Publish throughput; see `ours::publish`.
pub async fn publish(addr: String, n: usize, payload: Vec<u8>) -> io::Result<Phase> {
    let payload = Bytes::from(payload);
    let sub_client = connect(&addr, "bench-sub").await?;
    let mut sub = sub_client
        .subscribe("bench.chat")
        .await
        .map_err(io::Error::other)?;
    // The PING/PONG that proves the server has the subscription.
    sub_client.flush().await.map_err(io::Error::other)?;
    let publ = connect(&addr, "bench-pub").await?;
    let mut phase = Phase::start();
    let counter = tokio::spawn(async move {
        let (mut got, mut last) = (0usize, Instant::now());
        while got < n {
            match tokio::time::timeout(IDLE, sub.next()).await {
                Ok(Some(_)) => {
                    got += 1;
                    last = Instant::now();
                }
                Ok(None) | Err(_) => break,
            }
        }
        (got, last)
    });
    for _ in 0..n {
        publ.publish("bench.chat", payload.clone())
            .await
            .map_err(io::Error::other)?;
    }
    publ.flush().await.map_err(io::Error::other)?;
    let (got, last) = counter.await.unwrap_or((0, Instant::now()));
    phase.end_at(n, got, last);
    drop(sub_client);
    Ok(phase)
}

/// Round trips; see `ours::round_trips`.
pub async fn round_trips(addr: String, n: usize, payload: Vec<u8>) -> io::Result<Phase> {
    let payload = Bytes::from(payload);
    let responder = connect(&addr, "bench-responder").await?;
    let mut pings = responder
        .subscribe("bench.ping")
        .await
        .map_err(io::Error::other)?;
    responder.flush().await.map_err(io::Error::other)?;
    let answer = payload.clone();
    let answering = tokio::spawn(async move {
        while let Some(m) = pings.next().await {
            if let Some(reply) = m.reply {
                if responder.publish(reply, answer.clone()).await.is_err() {
                    break;
                }
            }
        }
    });
    let requester = connect(&addr, "bench-requester").await?;
    let mut phase = Phase::start();
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let at = Instant::now();
        tokio::time::timeout(DEADLINE, requester.request("bench.ping", payload.clone()))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))?
            .map_err(io::Error::other)?;
        latencies.push(at.elapsed());
    }
    phase.end(n, n);
    phase.latencies = latencies;
    answering.abort();
    Ok(phase)
}
