//! The gRPC API as a client in any language meets it: what reflection lists, and what a
//! request that is not protobuf gets back. A one-member node in this process, on
//! 127.0.0.1:0.

use std::time::Duration;

use prost::bytes::{Buf, BufMut};
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
    transport::Channel,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};
use tracechain_node::{
    api,
    crypto::{Scheme, SecretKey},
    genesis::{Genesis, GenesisFile},
    node::{Node, NodeConfig},
};

/// A node serving the API until the returned sender says stop.
async fn serve() -> (Channel, watch::Sender<bool>, tempfile::TempDir) {
    let admin = SecretKey::generate(Scheme::Ed25519);
    let node_key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let genesis = Genesis::from_file(GenesisFile::single_member(
        "api-chain",
        1_700_000_000_000,
        &node_key.verifying_key(),
        &admin.public_key(),
    ))
    .expect("genesis");
    let data = tempfile::tempdir().expect("tempdir");
    let node = Node::open(
        NodeConfig::new(data.path().join("db"), "farm".into()),
        genesis,
        node_key,
    )
    .expect("node");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, mut stopped) = watch::channel(false);
    tokio::spawn(api::serve(node, listener, async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect");
    (channel, stop, data)
}

#[tokio::test]
async fn reflection_lists_every_service_served() {
    let (channel, _stop, _data) = serve().await;
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses
        .next()
        .await
        .expect("one answer")
        .expect("not an error");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list, got {response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "tracechain.v1.Ledger"
        ]
    );
}

/// Sends bytes as they are and returns the answer's bytes: a client with a broken
/// encoder, or no protobuf at all.
#[derive(Clone, Default)]
struct RawCodec;

struct Raw;

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

#[tokio::test]
async fn a_request_that_is_not_protobuf_is_the_clients_fault() {
    let (channel, _stop, _data) = serve().await;
    let mut grpc = tonic::client::Grpc::new(channel);
    for method in [
        "/tracechain.v1.Ledger/GetBlock",
        "/tracechain.v1.Ledger/SubmitTxs",
    ] {
        grpc.ready().await.expect("ready");
        // 0xff... is a field key whose varint never ends: no protobuf message starts so.
        let status = grpc
            .unary(
                tonic::Request::new(vec![0xff; 12]),
                PathAndQuery::from_static(method),
                RawCodec,
            )
            .await
            .expect_err("junk must be refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{method}: {status:?}");
        assert!(
            status.message().contains("not protobuf"),
            "{method}: {}",
            status.message()
        );
    }
    // A well-formed request on the same connection still works.
    grpc.ready().await.expect("ready");
    let answer = grpc
        .unary(
            tonic::Request::new(Vec::new()),
            PathAndQuery::from_static("/tracechain.v1.Ledger/GetChainStatus"),
            RawCodec,
        )
        .await
        .expect("an empty GetChainStatusRequest is valid");
    assert!(!answer.into_inner().is_empty());
}

/// Every id a request names gets the check ids in transactions get: an id with a NUL (or
/// any control character) is the client's fault, INVALID_ARGUMENT with the reason, never a
/// read of another id's keys (it once answered INTERNAL "corrupt shipment event index
/// entry" and logged an ERROR on every call).
#[tokio::test]
async fn an_id_with_control_characters_is_refused_with_the_reason() {
    use tracechain_proto::v1::{self as pb, ledger_client::LedgerClient};
    let (channel, _stop, _data) = serve().await;
    let mut client = LedgerClient::new(channel);
    for id in ["S-1\0", "S-1\0\0\0", "\0", "S\u{7}1", "a\nb"] {
        let status = client
            .get_shipment_events(pb::GetShipmentEventsRequest {
                shipment_id: id.into(),
                ..Default::default()
            })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{id:?}: {status:?}");
        assert!(
            status.message().contains("control characters"),
            "{id:?}: {}",
            status.message()
        );
        let status = client
            .get_shipment(pb::GetShipmentRequest {
                shipment_id: id.into(),
            })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{id:?}: {status:?}");
        let status = client
            .get_device(pb::GetDeviceRequest {
                device_id: id.into(),
            })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{id:?}: {status:?}");
        let status = client
            .export_audit_bundle(pb::ExportAuditBundleRequest {
                shipment_id: id.into(),
            })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{id:?}: {status:?}");
    }
}

/// Every method of every service reflection lists: its path, and whether the client and
/// the server stream.
async fn every_method(channel: Channel) -> Vec<(String, bool, bool)> {
    use prost::Message;
    let mut reflection = ServerReflectionClient::new(channel);
    let mut ask = async |request: MessageRequest| {
        let mut answers = reflection
            .server_reflection_info(tokio_stream::iter([ServerReflectionRequest {
                host: String::new(),
                message_request: Some(request),
            }]))
            .await
            .expect("reflection")
            .into_inner();
        answers
            .next()
            .await
            .expect("one answer")
            .expect("not an error")
            .message_response
            .expect("an answer")
    };
    let MessageResponse::ListServicesResponse(list) =
        ask(MessageRequest::ListServices(String::new())).await
    else {
        panic!("expected a service list");
    };
    let mut methods = Vec::new();
    for service in list.service {
        let MessageResponse::FileDescriptorResponse(files) =
            ask(MessageRequest::FileContainingSymbol(service.name.clone())).await
        else {
            panic!("expected the file of {}", service.name);
        };
        for bytes in files.file_descriptor_proto {
            let file = prost_types::FileDescriptorProto::decode(bytes.as_slice()).expect("file");
            for s in &file.service {
                if format!("{}.{}", file.package(), s.name()) != service.name {
                    continue;
                }
                for m in &s.method {
                    methods.push((
                        format!("/{}/{}", service.name, m.name()),
                        m.client_streaming(),
                        m.server_streaming(),
                    ));
                }
            }
        }
    }
    methods.sort();
    methods.dedup();
    methods
}

/// The status a call with `bytes` as its one request message ends with: a unary
/// answer's, or a stream's first message or end (a stream still open after a while has
/// accepted the request: OK).
async fn status_of(
    grpc: &mut tonic::client::Grpc<Channel>,
    (path, client_streams, server_streams): &(String, bool, bool),
    bytes: Vec<u8>,
) -> Code {
    grpc.ready().await.expect("ready");
    let path = PathAndQuery::try_from(path.as_str()).expect("path");
    let stream = match (client_streams, server_streams) {
        (false, false) => {
            return match grpc.unary(tonic::Request::new(bytes), path, RawCodec).await {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            };
        }
        (false, true) => {
            grpc.server_streaming(tonic::Request::new(bytes), path, RawCodec)
                .await
        }
        (true, _) => {
            grpc.streaming(
                tonic::Request::new(tokio_stream::iter([bytes])),
                path,
                RawCodec,
            )
            .await
        }
    };
    let mut stream = match stream {
        Ok(answer) => answer.into_inner(),
        Err(status) => return status.code(),
    };
    match tokio::time::timeout(Duration::from_millis(300), stream.message()).await {
        Ok(Err(status)) => status.code(),
        Ok(Ok(_)) | Err(_) => Code::Ok,
    }
}

/// Bytes that are not protobuf, sent to every method of every service the node serves
/// (health and reflection included, as reflection lists them), are the client's fault:
/// INVALID_ARGUMENT (reflection just closes its stream). Seeded random bytes (which may
/// happen to decode, as unknown fields) never get INTERNAL or UNKNOWN, and the node
/// still answers afterwards.
#[tokio::test]
async fn every_method_of_every_service_blames_the_client_for_junk() {
    use rand::{Rng, SeedableRng};
    let (channel, _stop, _data) = serve().await;
    let methods = every_method(channel.clone()).await;
    let paths: Vec<&str> = methods.iter().map(|(p, ..)| p.as_str()).collect();
    for expected in [
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/tracechain.v1.Ledger/GetEvent",
        "/tracechain.v1.Ledger/SubscribeBlocks",
        "/tracechain.v1.Ledger/SubmitTxs",
    ] {
        assert!(paths.contains(&expected), "{expected} not in {paths:?}");
    }
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut rng = rand::rngs::StdRng::seed_from_u64(26);
    let mut calls = 0;
    for method in &methods {
        // 0xff... is a field key whose varint never ends: no protobuf message starts so.
        let code = status_of(&mut grpc, method, vec![0xff; 12]).await;
        // tonic-reflection ends its stream, without an answer or an error, at a request
        // it cannot decode (tonic-reflection 0.14, server/v1.rs): that blames no one.
        let expected = if method.0.starts_with("/grpc.reflection.") {
            Code::Ok
        } else {
            Code::InvalidArgument
        };
        assert_eq!(code, expected, "{}", method.0);
        for _ in 0..24 {
            let len = rng.gen_range(0..48);
            let bytes: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
            let code = status_of(&mut grpc, method, bytes.clone()).await;
            assert!(
                !matches!(code, Code::Internal | Code::Unknown),
                "{} answered {code:?} to {}",
                method.0,
                hex::encode(&bytes)
            );
            calls += 1;
        }
    }
    assert!(methods.len() >= 15, "{paths:?}");
    assert_eq!(calls, 24 * methods.len());
    let alive = status_of(
        &mut grpc,
        &("/tracechain.v1.Ledger/GetChainStatus".into(), false, false),
        Vec::new(),
    )
    .await;
    assert_eq!(alive, Code::Ok);
}
