//! A bare libp2p peer speaking one of the node's request-response protocols with the node's
//! framing: for tests of how a node treats a member that misbehaves at the stream level
//! (reads that fail, acknowledgements withheld).

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{
    StreamProtocol, Swarm, SwarmBuilder, identity, noise,
    request_response::{self, ProtocolSupport},
    tcp, yamux,
};

use super::{loopback, secret};

/// The node's request framing (a 4-byte big-endian length, then the body) and its
/// one-byte "delivered" acknowledgement. The first `fail_first` reads of a request fail
/// with a connection reset, as a stream that broke mid-way does.
#[derive(Clone, Default)]
pub struct Frames {
    reads: Arc<AtomicUsize>,
    fail_first: usize,
}

impl Frames {
    /// Frames whose first `n` request reads fail.
    pub fn failing_first(n: usize) -> Self {
        Self {
            reads: Arc::new(AtomicUsize::new(0)),
            fail_first: n,
        }
    }
}

impl request_response::Codec for Frames {
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

/// Member `seed` as a bare peer serving `protocol` with `codec`, listening on 127.0.0.1.
pub fn swarm(
    seed: u8,
    protocol: &'static str,
    codec: Frames,
    config: request_response::Config,
) -> Swarm<request_response::Behaviour<Frames>> {
    let keypair = identity::Keypair::ed25519_from_bytes(secret(seed)).expect("key");
    let behaviour = request_response::Behaviour::with_codec(
        codec,
        [(StreamProtocol::new(protocol), ProtocolSupport::Full)],
        config,
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
    swarm
}
