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
use tonic::{
    Status,
    codegen::http::{HeaderMap, HeaderValue, Request, Response},
};
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
/// not decode; any other status is left as it is. tonic's own `Status` reads and writes
/// the headers (the message's percent-encoding included).
fn blame_the_client(headers: &mut HeaderMap) {
    if headers.get("grpc-status").map(HeaderValue::as_bytes) != Some(b"13") {
        return;
    }
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    let Some(detail) = status.message().strip_prefix(PROST_DECODE_ERROR) else {
        return;
    };
    // Only fails for a message that cannot be a header value, which this one can.
    let _ = Status::invalid_argument(format!(
        "the message is not protobuf of the expected type{detail}"
    ))
    .add_header(headers);
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    fn headers(code: Code, message: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        Status::new(code, message).add_header(&mut h).unwrap();
        h
    }

    fn status(h: &HeaderMap) -> Status {
        Status::from_header_map(h).unwrap()
    }

    #[test]
    fn only_a_decode_failure_changes() {
        let mut h = headers(
            Code::Internal,
            "failed to decode Protobuf message: invalid varint",
        );
        blame_the_client(&mut h);
        assert_eq!(h["grpc-status"], "3");
        assert_eq!(
            status(&h).message(),
            "the message is not protobuf of the expected type: invalid varint"
        );
        for (code, message) in [
            (Code::Internal, "store failed"),
            (
                Code::InvalidArgument,
                "failed to decode Protobuf message: x",
            ),
            (Code::Ok, ""),
        ] {
            let mut h = headers(code, message);
            blame_the_client(&mut h);
            assert_eq!(h, headers(code, message));
        }
        let mut none = HeaderMap::new();
        blame_the_client(&mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn a_message_outside_ascii_survives() {
        let mut h = headers(
            Code::Internal,
            "failed to decode Protobuf message: 50% of \u{e9}t\u{e9}\nnext",
        );
        blame_the_client(&mut h);
        assert_eq!(
            status(&h).message(),
            "the message is not protobuf of the expected type: 50% of \u{e9}t\u{e9}\nnext"
        );
    }
}
