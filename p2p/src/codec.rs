//! Wire framing for the three request-response protocols. No serde: a few fixed bytes and
//! length-prefixed frames, every read bounded before anything is allocated.
//!
//! - `/tracechain/consensus/1` and `/tracechain/txs/1`: request = frame(message); response =
//!   one status byte (both use `MessageCodec`).
//! - `/tracechain/sync/1`: request = `from: u64 BE`, `to: u64 BE`; response = status byte, then
//!   frame(blocks) when the status is OK.
//!
//! A frame is a `u32` big-endian length followed by that many bytes. A length over the limit
//! is refused before reading the body, so a peer cannot make us allocate more than the limit.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;

use crate::error::Rejection;

/// Direct consensus messages.
pub(crate) const CONSENSUS_PROTOCOL: StreamProtocol =
    StreamProtocol::new("/tracechain/consensus/1");
/// Transaction batches pushed to members.
pub(crate) const TXS_PROTOCOL: StreamProtocol = StreamProtocol::new("/tracechain/txs/1");
/// Block sync.
pub(crate) const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/tracechain/sync/1");

const STATUS_OK: u8 = 0;

fn rejection_code(rejection: Rejection) -> u8 {
    match rejection {
        Rejection::Busy => 1,
        Rejection::NotAMember => 2,
        Rejection::Unavailable => 3,
        Rejection::ResponseTooLarge => 4,
        Rejection::BadRequest => 5,
    }
}

/// Decodes a status byte: `Ok(())` for OK, the rejection otherwise.
fn decode_status(code: u8) -> io::Result<Result<(), Rejection>> {
    Ok(Err(match code {
        STATUS_OK => return Ok(Ok(())),
        1 => Rejection::Busy,
        2 => Rejection::NotAMember,
        3 => Rejection::Unavailable,
        4 => Rejection::ResponseTooLarge,
        5 => Rejection::BadRequest,
        other => return Err(invalid(format!("unknown status byte {other}"))),
    }))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads one frame of at most `limit` bytes.
pub(crate) async fn read_frame<T>(io: &mut T, limit: usize) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > limit {
        return Err(invalid(format!(
            "frame of {len} bytes exceeds the limit of {limit}"
        )));
    }
    let mut body = Vec::with_capacity(len);
    io.take(len as u64).read_to_end(&mut body).await?;
    if body.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "truncated frame",
        ));
    }
    Ok(body)
}

/// Writes one frame; refuses (before writing anything) a body over `limit`.
pub(crate) async fn write_frame<T>(io: &mut T, body: &[u8], limit: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    if body.len() > limit {
        return Err(invalid(format!(
            "frame of {} bytes exceeds the limit of {limit}",
            body.len()
        )));
    }
    let len = u32::try_from(body.len()).map_err(|_| invalid("frame length over u32".into()))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(body).await
}

async fn read_byte<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<u8> {
    let mut byte = [0u8; 1];
    io.read_exact(&mut byte).await?;
    Ok(byte[0])
}

/// Codec of `/tracechain/consensus/1` and `/tracechain/txs/1`: one bounded frame in, one
/// status byte back. Each protocol has its own behaviour (and so its own stream budget).
#[derive(Debug, Clone)]
pub(crate) struct MessageCodec {
    pub max_message_bytes: usize,
}

/// The answer to a consensus message or a transaction push: delivered to the node's queue, or
/// refused.
pub(crate) type MessageAck = Result<(), Rejection>;

impl request_response::Codec for MessageCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = MessageAck;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_message_bytes).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<MessageAck>
    where
        T: AsyncRead + Unpin + Send,
    {
        decode_status(read_byte(io).await?)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req, self.max_message_bytes).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: MessageAck,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let code = match res {
            Ok(()) => STATUS_OK,
            Err(rejection) => rejection_code(rejection),
        };
        io.write_all(&[code]).await
    }
}

/// A block-sync request: the heights `from..=to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockRange {
    pub from: u64,
    pub to: u64,
}

/// The answer to a block-sync request: the node's encoded blocks, or a refusal.
pub(crate) type SyncResponse = Result<Vec<u8>, Rejection>;

/// Codec of `/tracechain/sync/1`.
#[derive(Debug, Clone)]
pub(crate) struct SyncCodec {
    pub max_response_bytes: usize,
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = BlockRange;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<BlockRange>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut bytes = [0u8; 16];
        io.read_exact(&mut bytes).await?;
        let (from, to) = bytes.split_at(8);
        let from = u64::from_be_bytes(from.try_into().map_err(|_| invalid("range".into()))?);
        let to = u64::from_be_bytes(to.try_into().map_err(|_| invalid("range".into()))?);
        Ok(BlockRange { from, to })
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        match decode_status(read_byte(io).await?)? {
            Ok(()) => Ok(Ok(read_frame(io, self.max_response_bytes).await?)),
            Err(rejection) => Ok(Err(rejection)),
        }
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: BlockRange,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&req.from.to_be_bytes());
        bytes[8..].copy_from_slice(&req.to.to_be_bytes());
        io.write_all(&bytes).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: SyncResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match res {
            Ok(blocks) => {
                io.write_all(&[STATUS_OK]).await?;
                write_frame(io, &blocks, self.max_response_bytes).await
            }
            Err(rejection) => io.write_all(&[rejection_code(rejection)]).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::io::Cursor;
    use request_response::Codec;

    use super::*;

    #[test]
    fn frame_round_trips() {
        let mut wire = Cursor::new(Vec::new());
        block_on(write_frame(&mut wire, b"hello", 5)).expect("within limit");
        wire.set_position(0);
        assert_eq!(block_on(read_frame(&mut wire, 5)).expect("valid"), b"hello");
    }

    #[test]
    fn oversized_length_prefix_is_refused_before_reading() {
        // Claims 4 GiB; the reader must refuse from the prefix alone.
        let mut wire = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let err = block_on(read_frame(&mut wire, 1024)).expect_err("over the limit");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn truncated_frame_is_an_error() {
        let mut bytes = 10u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        let err = block_on(read_frame(&mut Cursor::new(bytes), 1024)).expect_err("truncated");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn writer_refuses_oversized_body() {
        let mut wire = Cursor::new(Vec::new());
        assert!(block_on(write_frame(&mut wire, &[0; 6], 5)).is_err());
        assert!(wire.get_ref().is_empty(), "nothing written");
    }

    #[test]
    fn sync_messages_round_trip() {
        let mut codec = SyncCodec {
            max_response_bytes: 64,
        };
        let range = BlockRange {
            from: 7,
            to: u64::MAX,
        };
        let mut wire = Cursor::new(Vec::new());
        block_on(codec.write_request(&SYNC_PROTOCOL, &mut wire, range)).expect("write");
        wire.set_position(0);
        assert_eq!(
            block_on(codec.read_request(&SYNC_PROTOCOL, &mut wire)).expect("read"),
            range
        );

        for response in [
            Ok(b"blocks".to_vec()),
            Err(Rejection::Busy),
            Err(Rejection::BadRequest),
        ] {
            let mut wire = Cursor::new(Vec::new());
            block_on(codec.write_response(&SYNC_PROTOCOL, &mut wire, response.clone()))
                .expect("write");
            wire.set_position(0);
            let read = block_on(codec.read_response(&SYNC_PROTOCOL, &mut wire)).expect("read");
            assert_eq!(read, response);
        }
    }

    #[test]
    fn message_acks_round_trip_and_unknown_status_is_refused() {
        let mut codec = MessageCodec {
            max_message_bytes: 8,
        };
        // One codec for both protocols; the protocol name does not change the wire format.
        for protocol in [CONSENSUS_PROTOCOL, TXS_PROTOCOL] {
            let mut wire = Cursor::new(Vec::new());
            block_on(codec.write_request(&protocol, &mut wire, b"batch".to_vec())).expect("write");
            wire.set_position(0);
            assert_eq!(
                block_on(codec.read_request(&protocol, &mut wire)).expect("read"),
                b"batch"
            );
            for ack in [
                Ok(()),
                Err(Rejection::Busy),
                Err(Rejection::NotAMember),
                Err(Rejection::Unavailable),
            ] {
                let mut wire = Cursor::new(Vec::new());
                block_on(codec.write_response(&protocol, &mut wire, ack)).expect("write");
                wire.set_position(0);
                assert_eq!(
                    block_on(codec.read_response(&protocol, &mut wire)).expect("read"),
                    ack
                );
            }
            let mut wire = Cursor::new(vec![200u8]);
            assert!(block_on(codec.read_response(&protocol, &mut wire)).is_err());
        }
    }
}
