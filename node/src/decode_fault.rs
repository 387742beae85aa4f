//! Bytes that are not protobuf are the client's fault, on every service the node serves.
//!
//! Our own service decodes with `tracechain_proto::codec::StrictCodec`, which answers
//! INVALID_ARGUMENT. The services tonic brings (grpc.health.v1.Health, gRPC reflection)
//! decode with prost's codec, which answers INTERNAL "failed to decode Protobuf
//! message", telling the client that the server failed. This layer turns exactly that
//! answer into INVALID_ARGUMENT, wherever the status travels: in the response headers
//! (a unary call's trailers-only answer) or in the trailers (a stream's end).

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use http_body::{Body, Frame};
use tonic::codegen::http::{HeaderMap, HeaderValue, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

/// prost's `DecodeError` text, which tonic's prost codec puts in an INTERNAL status.
const PROST_DECODE_ERROR: &str = "failed to decode Protobuf message";

/// Wraps a gRPC server's routes; see the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeFaultLayer;

impl<S> Layer<S> for DecodeFaultLayer {
    type Service = DecodeFault<S>;

    fn layer(&self, inner: S) -> DecodeFault<S> {
        DecodeFault(inner)
    }
}

/// The service [`DecodeFaultLayer`] makes.
#[derive(Debug, Clone)]
pub struct DecodeFault<S>(S);

impl<S, ReqBody> Service<Request<ReqBody>> for DecodeFault<S>
where
    S: Service<Request<ReqBody>, Response = Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let answer = self.0.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            blame_the_client(response.headers_mut());
            Ok(response.map(|body| tonic::body::Body::new(Trailers(body))))
        })
    }
}

/// A response body whose trailers get [`blame_the_client`].
struct Trailers(tonic::body::Body);

impl Body for Trailers {
    type Data = <tonic::body::Body as Body>::Data;
    type Error = <tonic::body::Body as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.0).poll_frame(cx).map(|frame| {
            frame.map(|frame| {
                frame.map(|mut frame| {
                    if let Some(trailers) = frame.trailers_mut() {
                        blame_the_client(trailers);
                    }
                    frame
                })
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}

/// INTERNAL "failed to decode Protobuf message: ..." → INVALID_ARGUMENT, saying what did
/// not decode; any other status is left as it is.
fn blame_the_client(headers: &mut HeaderMap) {
    if headers.get("grpc-status").map(HeaderValue::as_bytes) != Some(b"13") {
        return;
    }
    let message = headers
        .get("grpc-message")
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    let Some(detail) = message.strip_prefix(PROST_DECODE_ERROR) else {
        return;
    };
    let text = format!("the message is not protobuf of the expected type{detail}");
    headers.insert("grpc-status", HeaderValue::from_static("3"));
    if let Ok(value) = HeaderValue::from_str(&percent_encode(&text)) {
        headers.insert("grpc-message", value);
    }
}

/// gRPC's percent-encoding of `grpc-message` (every byte outside printable ASCII, and
/// `%`, as `%XX`).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(status: &str, message: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_str(status).unwrap());
        h.insert(
            "grpc-message",
            HeaderValue::from_str(&percent_encode(message)).unwrap(),
        );
        h
    }

    #[test]
    fn only_a_decode_failure_changes() {
        let mut h = headers("13", "failed to decode Protobuf message: invalid varint");
        blame_the_client(&mut h);
        assert_eq!(h["grpc-status"], "3");
        assert_eq!(
            percent_decode(h["grpc-message"].as_bytes()),
            "the message is not protobuf of the expected type: invalid varint"
        );
        for (status, message) in [
            ("13", "store failed"),
            ("3", "failed to decode Protobuf message: x"),
            ("0", ""),
        ] {
            let mut h = headers(status, message);
            blame_the_client(&mut h);
            assert_eq!(h, headers(status, message));
        }
        let mut none = HeaderMap::new();
        blame_the_client(&mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn percent_encoding_round_trips() {
        for text in ["plain", "50% of \u{e9}t\u{e9}", "%zz", "%", "line\nbreak"] {
            assert_eq!(percent_decode(percent_encode(text).as_bytes()), text);
        }
        assert_eq!(percent_decode(b"%zz"), "%zz");
    }
}
