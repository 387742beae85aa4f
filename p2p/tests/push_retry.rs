//! A push that fails with an I/O error (a connection that broke mid-stream, as after a
//! member was paused and resumed) is sent again, not dropped: the member still gets its
//! transactions, in order. The far end here is a bare libp2p peer whose first two reads
//! of a push fail.

mod common;

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::*;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::{
    Multiaddr, StreamProtocol, SwarmBuilder, identity, noise,
    request_response::{self, ProtocolSupport},
    swarm::SwarmEvent,
    tcp, yamux,
};
use tokio::{sync::mpsc, time::timeout};

/// `/tracechain/txs/1` as the node frames it; the first `fail_first` requests read fail.
#[derive(Clone)]
struct FlakyFrames {
    reads: Arc<AtomicUsize>,
    fail_first: usize,
}

impl request_response::Codec for FlakyFrames {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = ();

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        if self.reads.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
        }
        let mut len = [0u8; 4];
        io.read_exact(&mut len).await?;
        let mut body = vec![0; u32::from_be_bytes(len).min(1 << 24) as usize];
        io.read_exact(&mut body).await?;
        Ok(body)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, _: &mut T) -> io::Result<()>
    where
        T: AsyncRead + Unpin + Send,
    {
        Ok(())
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        Ok(())
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, (): ()) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&[0]).await // delivered
    }
}

/// Runs member `seed` as a bare peer on 127.0.0.1; sends its address, then every push it
/// reads.
async fn flaky_member(seed: u8, fail_first: usize, out: mpsc::Sender<Result<Multiaddr, Vec<u8>>>) {
    let keypair = identity::Keypair::ed25519_from_bytes(secret(seed)).expect("key");
    let codec = FlakyFrames {
        reads: Arc::new(AtomicUsize::new(0)),
        fail_first,
    };
    let behaviour = request_response::Behaviour::with_codec(
        codec,
        [(
            StreamProtocol::new("/tracechain/txs/1"),
            ProtocolSupport::Full,
        )],
        request_response::Config::default(),
    );
    let mut swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("transport")
        .with_behaviour(|_| behaviour)
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.listen_on(loopback()).expect("listen");
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => {
                let _ = out.send(Ok(address)).await;
            }
            SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            }) => {
                let _ = swarm.behaviour_mut().send_response(channel, ());
                let _ = out.send(Err(request)).await;
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_fails_mid_stream_is_sent_again_in_order() {
    init_logs();
    let (out, mut received) = mpsc::channel(16);
    let peer = tokio::spawn(flaky_member(2, 2, out));
    let addr = match timeout(DEADLINE, received.recv()).await.expect("listening") {
        Some(Ok(addr)) => addr,
        other => panic!("expected the peer's address, got {other:?}"),
    };
    let node = start(
        1,
        fast_config(1, loopback(), member_specs(&[2], &[Some(addr)]), vec![]),
    )
    .await;
    wait_until("the peer connected", || async {
        node.handle
            .stats()
            .await
            .is_ok_and(|s| s.connected_members.len() == 1)
    })
    .await;

    node.handle
        .push_txs(b"first".to_vec())
        .await
        .expect("queued");
    node.handle
        .push_txs(b"second".to_vec())
        .await
        .expect("queued");
    // Whatever the coalescing, the member reads both, once each, first before second.
    let mut got = Vec::new();
    while got.len() < b"firstsecond".len() {
        match timeout(DEADLINE, received.recv())
            .await
            .expect("a push arrives")
        {
            Some(Err(bytes)) => got.extend(bytes),
            other => panic!("expected a push, got {other:?}"),
        }
    }
    assert_eq!(got, b"firstsecond");
    let stats = node.handle.stats().await.expect("stats");
    assert_eq!(stats.dropped_pushes, 0, "{stats:?}");
    peer.abort();
}
