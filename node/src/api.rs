//! The integrators' gRPC API (`tracechain.v1.Ledger`), gRPC reflection and the
//! standard health service, over one [`Node`].
//!
//! Every handler validates its request, maps node errors to precise status codes
//! (INVALID_ARGUMENT, ALREADY_EXISTS, FAILED_PRECONDITION, RESOURCE_EXHAUSTED,
//! NOT_FOUND) and never panics on client input. Request sizes are bounded.

use std::{future::Future, pin::Pin, time::Duration};

use futures::{Stream, StreamExt};
use tokio::net::TcpListener;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, transport::server::TcpIncoming};
use tracechain_proto::v1::{self as pb, ledger_server::LedgerServer};

use crate::{
    admission::AdmissionError,
    ledger::provenance::{self, Recorded},
    node::{HistoryError, Node},
    tx::TxId,
};

/// Largest request the server decodes: a SubmitTxs of many transactions.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// Most transactions in one SubmitTxs.
pub const MAX_TXS_PER_REQUEST: usize = 10_000;
/// Longest `wait_for_commit`.
pub const COMMIT_WAIT: Duration = Duration::from_secs(30);
/// Most transactions one provenance answer reads.
pub const MAX_PROVENANCE_EVENTS: usize = 10_000;
/// Default and largest page of shipment events.
pub const MAX_EVENTS_PAGE: u32 = 1_000;

/// The Ledger service.
pub struct Api {
    node: Node,
}

fn tx_id(bytes: &[u8]) -> Result<TxId, Status> {
    <[u8; 32]>::try_from(bytes)
        .map(TxId)
        .map_err(|_| Status::invalid_argument("tx_id must be 32 bytes"))
}

/// A request's page size: 0 means the default, and no page is larger than the cap.
fn page_limit(limit: u32) -> usize {
    if limit == 0 {
        MAX_EVENTS_PAGE as usize
    } else {
        limit.min(MAX_EVENTS_PAGE) as usize
    }
}

/// The transactions that name `identifier`, for a provenance answer.
async fn history(node: &Node, identifier: &str) -> Result<Vec<Recorded>, Status> {
    node.recorded(identifier, MAX_PROVENANCE_EVENTS)
        .await
        .map_err(|e| history_status(identifier, e))
}

fn history_status(identifier: &str, e: HistoryError) -> Status {
    match e {
        HistoryError::Read(e) => internal(e),
        too_long @ HistoryError::TooLong { .. } => Status::failed_precondition(format!(
            "{identifier}: {too_long}; page through GetIdentifierEvents"
        )),
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "request failed on a local fault");
    Status::internal(e.to_string())
}

/// An id a request names gets the check ids in transactions get (1..=256 bytes, no
/// control characters): no request can name a key no transaction could have written.
fn identifier(field: &str, value: &str) -> Result<(), Status> {
    crate::tx::check_id(field, value).map_err(|e| Status::invalid_argument(e.to_string()))
}

#[tonic::async_trait]
impl pb::ledger_server::Ledger for Api {
    async fn submit_tx(
        &self,
        request: Request<pb::SubmitTxRequest>,
    ) -> Result<Response<pb::SubmitTxResponse>, Status> {
        let req = request.into_inner();
        let tx = req
            .tx
            .ok_or_else(|| Status::invalid_argument("tx is required"))?;
        let id = match self.node.submit(vec![tx]).await.pop() {
            Some(Ok(id)) => id,
            Some(Err(e)) => return Err(Status::new(admission_code(&e), e.to_string())),
            None => return Err(Status::internal("no admission outcome")),
        };
        let mut response = pb::SubmitTxResponse {
            tx_id: id.0.to_vec(),
            status: pb::TxStatus::Pending as i32,
            ..Default::default()
        };
        if req.wait_for_commit
            && let Some(found) = self.node.wait_for_commit(id, COMMIT_WAIT).await
        {
            response.status = found.status as i32;
            response.height = found.height;
            response.index = found.index;
            response.result = found.result;
        }
        Ok(Response::new(response))
    }

    async fn submit_txs(
        &self,
        request: Request<pb::SubmitTxsRequest>,
    ) -> Result<Response<pb::SubmitTxsResponse>, Status> {
        let txs = request.into_inner().txs;
        if txs.len() > MAX_TXS_PER_REQUEST {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_TXS_PER_REQUEST} transactions per request, got {}",
                txs.len()
            )));
        }
        let ids: Vec<Vec<u8>> = txs
            .iter()
            .map(|t| blake3::hash(&t.body).as_bytes().to_vec())
            .collect();
        let outcomes = self
            .node
            .submit(txs)
            .await
            .into_iter()
            .zip(ids)
            .map(|(outcome, id)| match outcome {
                Ok(_) => pb::SubmitOutcome {
                    tx_id: id,
                    accepted: true,
                    ..Default::default()
                },
                Err(e) => pb::SubmitOutcome {
                    tx_id: id,
                    accepted: false,
                    error_code: code_name(admission_code(&e)).to_string(),
                    error: e.to_string(),
                },
            })
            .collect();
        Ok(Response::new(pb::SubmitTxsResponse { outcomes }))
    }

    async fn get_tx(
        &self,
        request: Request<pb::GetTxRequest>,
    ) -> Result<Response<pb::GetTxResponse>, Status> {
        let id = tx_id(&request.into_inner().tx_id)?;
        let found = self.node.get_tx(id).await.map_err(internal)?;
        if found.status == pb::TxStatus::Unknown {
            return Err(Status::not_found(format!("transaction {id} is unknown")));
        }
        Ok(Response::new(pb::GetTxResponse {
            tx_id: id.0.to_vec(),
            status: found.status as i32,
            height: found.height,
            index: found.index,
            result: found.result,
            tx: found.tx,
            block_time_ms: found.block_time_ms,
        }))
    }

    async fn get_event(
        &self,
        request: Request<pb::GetEventRequest>,
    ) -> Result<Response<pb::GetEventResponse>, Status> {
        let event_hash = request.into_inner().event_hash;
        crate::epcis::hash::check_hash_id(&event_hash).map_err(Status::invalid_argument)?;
        let (record, found) = self
            .node
            .epcis_event(&event_hash)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("no event {event_hash} is recorded")))?;
        Ok(Response::new(pb::GetEventResponse {
            record: Some(record),
            index: found.index,
            block_time_ms: found.block_time_ms,
            tx: found.tx,
        }))
    }

    async fn get_block(
        &self,
        request: Request<pb::GetBlockRequest>,
    ) -> Result<Response<pb::CommittedBlock>, Status> {
        let block = match request.into_inner().by {
            Some(pb::get_block_request::By::Height(h)) => self.node.block(h).await,
            Some(pb::get_block_request::By::Hash(h)) => {
                let hash = <[u8; 32]>::try_from(h.as_slice())
                    .map_err(|_| Status::invalid_argument("hash must be 32 bytes"))?;
                self.node.block_by_hash(hash).await
            }
            None => return Err(Status::invalid_argument("give a height or a hash")),
        }
        .map_err(internal)?;
        block
            .map(Response::new)
            .ok_or_else(|| Status::not_found("no such block"))
    }

    async fn get_shipment(
        &self,
        request: Request<pb::GetShipmentRequest>,
    ) -> Result<Response<pb::ShipmentTwin>, Status> {
        let id = request.into_inner().shipment_id;
        identifier("shipment_id", &id)?;
        self.node
            .shipment(&id)
            .await
            .map_err(internal)?
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("shipment {id} does not exist")))
    }

    async fn export_audit_bundle(
        &self,
        request: Request<pb::ExportAuditBundleRequest>,
    ) -> Result<Response<pb::AuditBundle>, Status> {
        let id = request.into_inner().shipment_id;
        identifier("shipment_id", &id)?;
        match self.node.audit_bundle(&id).await {
            Ok(bundle) => Ok(Response::new(bundle)),
            Err(e @ crate::audit::bundle::ExportError::UnknownShipment(_)) => {
                Err(Status::not_found(e.to_string()))
            }
            Err(e) => Err(internal(e)),
        }
    }

    async fn check_epcis_document(
        &self,
        request: Request<pb::CheckEpcisDocumentRequest>,
    ) -> Result<Response<pb::CheckEpcisDocumentResponse>, Status> {
        let document = request.into_inner().document;
        // Parsing a large document is CPU work: keep it off the async runtime.
        let parsed =
            tokio::task::spawn_blocking(move || crate::epcis::parse::parse_document(&document))
                .await
                .map_err(internal)?;
        Ok(Response::new(crate::epcis::import::check_response(parsed)))
    }

    async fn get_shipment_events(
        &self,
        request: Request<pb::GetShipmentEventsRequest>,
    ) -> Result<Response<pb::GetShipmentEventsResponse>, Status> {
        let req = request.into_inner();
        identifier("shipment_id", &req.shipment_id)?;
        let limit = page_limit(req.limit);
        let (events, total) = self
            .node
            .shipment_events(&req.shipment_id, req.offset, limit)
            .await
            .map_err(internal)?;
        if total == 0
            && self
                .node
                .shipment(&req.shipment_id)
                .await
                .map_err(internal)?
                .is_none()
        {
            return Err(Status::not_found(format!(
                "shipment {} does not exist",
                req.shipment_id
            )));
        }
        Ok(Response::new(pb::GetShipmentEventsResponse {
            events,
            total,
        }))
    }

    async fn get_identifier_events(
        &self,
        request: Request<pb::GetIdentifierEventsRequest>,
    ) -> Result<Response<pb::GetIdentifierEventsResponse>, Status> {
        let req = request.into_inner();
        identifier("identifier", &req.identifier)?;
        let limit = page_limit(req.limit);
        let (events, total) = self
            .node
            .identifier_events(&req.identifier, req.offset, limit)
            .await
            .map_err(internal)?;
        Ok(Response::new(pb::GetIdentifierEventsResponse {
            key: crate::ledger::identifiers::key(&req.identifier),
            events,
            total,
        }))
    }

    async fn get_provenance(
        &self,
        request: Request<pb::GetProvenanceRequest>,
    ) -> Result<Response<pb::GetProvenanceResponse>, Status> {
        use provenance::{StepKind, Verdict};
        let id = request.into_inner().identifier;
        identifier("identifier", &id)?;
        let recorded = history(&self.node, &id).await?;
        let p = provenance::assess(self.node.genesis(), &id, &recorded);
        let (prefix_holder, prefix) = p.prefix_holder.clone().unwrap_or_default();
        let stays = crate::containers::stays(&self.node, &id, MAX_PROVENANCE_EVENTS)
            .await
            .map_err(|e| history_status(&id, e))?;
        let contents = self
            .node
            .contents(&id)
            .await
            .map_err(internal)?
            .map(|c| c.children)
            .unwrap_or_default();
        let mut reasons = p.reasons;
        reasons.extend(crate::containers::reasons(&stays));
        Ok(Response::new(pb::GetProvenanceResponse {
            key: p.key,
            verdict: match p.verdict {
                Verdict::Genuine => pb::ProvenanceVerdict::Genuine,
                Verdict::Suspect => pb::ProvenanceVerdict::Suspect,
                Verdict::Unknown => pb::ProvenanceVerdict::Unknown,
            } as i32,
            reasons,
            commissioned_by: p.commissioned_by.unwrap_or_default(),
            prefix_holder,
            prefix,
            stays: stays.stays,
            stays_dropped: stays.dropped,
            contents,
            steps: p
                .steps
                .into_iter()
                .map(|s| pb::ProvenanceStep {
                    height: s.height,
                    index: s.index,
                    time_ms: s.time_ms,
                    signer: s.member,
                    kind: match s.kind {
                        StepKind::Commissioned => pb::ProvenanceStepKind::Commissioned,
                        StepKind::Decommissioned => pb::ProvenanceStepKind::Decommissioned,
                        StepKind::Observed => pb::ProvenanceStepKind::Observed,
                    } as i32,
                    what: s.what,
                    place: s.place,
                })
                .collect(),
        }))
    }

    async fn get_contents(
        &self,
        request: Request<pb::GetContentsRequest>,
    ) -> Result<Response<pb::GetContentsResponse>, Status> {
        let req = request.into_inner();
        identifier("identifier", &req.identifier)?;
        let key = crate::ledger::identifiers::key(&req.identifier);
        let now = self
            .node
            .contents(&req.identifier)
            .await
            .map_err(internal)?
            .unwrap_or_default();
        let children = match req.at_ms {
            None => now.children,
            Some(at_ms) => {
                let recorded = history(&self.node, &req.identifier).await?;
                crate::ledger::containment::contents_at(&req.identifier, &recorded, at_ms)
            }
        };
        Ok(Response::new(pb::GetContentsResponse {
            key,
            children,
            shipment_id: now.shipment_id,
        }))
    }

    async fn get_lineage(
        &self,
        request: Request<pb::GetLineageRequest>,
    ) -> Result<Response<pb::GetLineageResponse>, Status> {
        let req = request.into_inner();
        identifier("identifier", &req.identifier)?;
        crate::lineage::lineage(&self.node, &req.identifier, req.max_depth)
            .await
            .map(Response::new)
            .map_err(|e| match e {
                crate::lineage::LineageError::History(e) => history_status(&req.identifier, e),
                too_large => Status::failed_precondition(too_large.to_string()),
            })
    }

    async fn query_events(
        &self,
        request: Request<pb::QueryEventsRequest>,
    ) -> Result<Response<pb::QueryEventsResponse>, Status> {
        let req = request.into_inner();
        let params = req.params.into_iter().map(|p| (p.name, p.values)).collect();
        let page = crate::query::run(&self.node, params, req.per_page, &req.next_page_token)
            .await
            .map_err(|e| match e {
                crate::query::QueryError::Read(e) => internal(e),
                bad => Status::invalid_argument(bad.to_string()),
            })?;
        let count = page.events.len() as u32;
        let document =
            crate::ledger::epcis::query::query_document(page.events, crate::node::now_ms());
        Ok(Response::new(pb::QueryEventsResponse {
            query_document_json: document.to_string(),
            next_page_token: page.next_page_token.unwrap_or_default(),
            count,
        }))
    }

    async fn get_fsma_records(
        &self,
        request: Request<pb::GetFsmaRecordsRequest>,
    ) -> Result<Response<pb::GetFsmaRecordsResponse>, Status> {
        let req = request.into_inner();
        identifier("lot", &req.lot)?;
        let (lots, rows) = crate::fsma::records(
            &self.node,
            &req.lot,
            req.from_ms.unwrap_or(i64::MIN),
            req.to_ms.unwrap_or(i64::MAX),
            req.max_depth,
        )
        .await
        .map_err(|e| match e {
            crate::fsma::FsmaError::History(e)
            | crate::fsma::FsmaError::Lineage(crate::lineage::LineageError::History(e)) => {
                history_status(&req.lot, e)
            }
            bound => Status::failed_precondition(bound.to_string()),
        })?;
        Ok(Response::new(pb::GetFsmaRecordsResponse {
            columns: crate::ledger::fsma::COLUMNS
                .iter()
                .map(|c| c.to_string())
                .collect(),
            rows: rows.into_iter().map(crate::fsma::to_proto).collect(),
            lots,
        }))
    }

    async fn verify_product(
        &self,
        request: Request<pb::VerifyProductRequest>,
    ) -> Result<Response<pb::VerifyProductResponse>, Status> {
        let r = request.into_inner();
        for (field, value) in [("serial", &r.serial), ("lot", &r.lot), ("gtin", &r.gtin)] {
            identifier(field, value)?;
        }
        let id =
            provenance::product_identifier(&r.gtin, &r.serial).map_err(Status::invalid_argument)?;
        let recorded = history(&self.node, &id).await?;
        let check = provenance::verify_product(
            self.node.genesis(),
            &r.gtin,
            &r.serial,
            &r.lot,
            &r.expiry,
            &recorded,
        )
        .map_err(Status::invalid_argument)?;
        Ok(Response::new(pb::VerifyProductResponse {
            key: check.key,
            verified: check.verified,
            reasons: check.reasons,
        }))
    }

    async fn get_device(
        &self,
        request: Request<pb::GetDeviceRequest>,
    ) -> Result<Response<pb::DeviceRecord>, Status> {
        let id = request.into_inner().device_id;
        identifier("device_id", &id)?;
        self.node
            .device(&id)
            .await
            .map_err(internal)?
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("device {id} is not registered")))
    }

    async fn get_device_conflicts(
        &self,
        request: Request<pb::GetDeviceConflictsRequest>,
    ) -> Result<Response<pb::GetDeviceConflictsResponse>, Status> {
        let id = request.into_inner().device_id;
        if !id.is_empty() {
            identifier("device_id", &id)?;
        }
        let conflicts = self
            .node
            .device_conflicts(Some(id.as_str()).filter(|d| !d.is_empty()));
        Ok(Response::new(pb::GetDeviceConflictsResponse { conflicts }))
    }

    async fn get_chain_status(
        &self,
        _request: Request<pb::GetChainStatusRequest>,
    ) -> Result<Response<pb::ChainStatus>, Status> {
        Ok(Response::new(self.node.status().await))
    }

    type SubscribeBlocksStream =
        Pin<Box<dyn Stream<Item = Result<pb::CommittedBlock, Status>> + Send + 'static>>;

    async fn subscribe_blocks(
        &self,
        request: Request<pb::SubscribeBlocksRequest>,
    ) -> Result<Response<Self::SubscribeBlocksStream>, Status> {
        let from = request.into_inner().from_height;
        let stream =
            ReceiverStream::new(self.node.subscribe(from)).map(|item| item.map_err(internal));
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    node: Node,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<LedgerServer<Api>>().await;
    // Reflection lists every service served: ours and grpc.health.v1.Health.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tracechain_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let ledger = LedgerServer::new(Api { node })
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(64 * 1024 * 1024);
    tonic::transport::Server::builder()
        .concurrency_limit_per_connection(256)
        .timeout(Duration::from_secs(60))
        .layer(crate::decode_fault::DecodeFaultLayer)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(ledger)
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await?;
    Ok(())
}

/// The accepted connections of `listener`, with Nagle's algorithm off on each: tonic's
/// `Server::tcp_nodelay` applies only to listeners it binds itself, and with Nagle on, a
/// client making one unary call at a time waits ~40 ms per call for the delayed ACK.
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// The gRPC status of an admission refusal: the client's fault (INVALID_ARGUMENT), a
/// repeat (ALREADY_EXISTS), ruled out by committed state (FAILED_PRECONDITION), no room
/// now (RESOURCE_EXHAUSTED: retry later), or the node's fault (INTERNAL).
pub fn admission_code(e: &AdmissionError) -> tonic::Code {
    match e {
        AdmissionError::Invalid(_) => tonic::Code::InvalidArgument,
        AdmissionError::Duplicate { .. } => tonic::Code::AlreadyExists,
        AdmissionError::Revoked { .. } | AdmissionError::Replayed { .. } => {
            tonic::Code::FailedPrecondition
        }
        AdmissionError::Full { .. } | AdmissionError::Overloaded => tonic::Code::ResourceExhausted,
        AdmissionError::Internal(_) => tonic::Code::Internal,
    }
}

/// The canonical gRPC name of a status code ("RESOURCE_EXHAUSTED"), as `SubmitOutcome`
/// documents it, so that clients in any language can match on it.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
