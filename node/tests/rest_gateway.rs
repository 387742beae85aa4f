//! The EPCIS 2.0 REST gateway as an EPCIS client meets it: a real HTTP client over
//! 127.0.0.1, against the gateway in front of a real one-member node (both in this
//! process, on ephemeral ports).

mod gateway_common;

use gateway_common::{AUTH, events, header, request, serve};
use tracechain_node::gateway;

#[tokio::test]
async fn queries_page_and_fail_as_the_binding_says() {
    let s = serve().await;
    let url = |path: &str| format!("{}{path}", s.base);

    // Without the token: nothing.
    let a = request("GET", &url("/events"), &[]).await;
    assert_eq!(a.status, 401);
    assert_eq!(header(&a, "content-type"), "application/problem+json");
    assert_eq!(
        a.body["type"], "epcisException:SecurityException",
        "{}",
        a.body
    );
    assert_eq!(header(&a, "gs1-epcis-version"), "2.0.0");
    let a = request("GET", &url("/events"), &[("authorization", "Bearer nope")]).await;
    assert_eq!(a.status, 401);

    // One item, by its EPC; in JSON-LD when asked.
    let item = "urn:epc:id:sgtin:4012345.011111.farm1";
    let a = request("GET", &url(&format!("/events?MATCH_epc={item}")), &[AUTH]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(header(&a, "content-type"), "application/json");
    assert_eq!(header(&a, "gs1-epcis-version"), "2.0.0");
    assert_eq!(header(&a, "gs1-cbv-version"), "2.0.0");
    assert_eq!(a.body["type"], "EPCISQueryDocument");
    let found = events(&a);
    assert_eq!(found.len(), 1, "{}", a.body);
    assert_eq!(found[0]["epcList"][0], item);
    let ld = request(
        "GET",
        &url(&format!("/events?MATCH_epc={item}")),
        &[AUTH, ("accept", "application/ld+json")],
    )
    .await;
    assert_eq!(header(&ld, "content-type"), "application/ld+json");
    assert_eq!(events(&ld), found);
    // The same through /epcs/{epc}/events, and by pattern, values OR-ed with `|`.
    let a = request("GET", &url(&format!("/epcs/{item}/events")), &[AUTH]).await;
    assert_eq!(events(&a), found);
    let a = request(
        "GET",
        &url("/events?MATCH_epc=urn:epc:idpat:sgtin:4012345.011111.*&EQ_bizStep=shipping%7Cinspecting"),
        &[AUTH],
    )
    .await;
    assert_eq!(events(&a).len(), 3, "{}", a.body);

    // One event by its id: the Event Hash ID the consortium keeps for an imported
    // event, in a query document of that event.
    let mut recorded = found[0].clone();
    recorded
        .as_object_mut()
        .expect("an object")
        .remove("recordTime");
    let by_hash =
        tracechain_node::epcis::hash::recorded_event_hash_of(&recorded).expect("its hash");
    let a = request(
        "GET",
        &url(&format!(
            "/events/{}",
            form_urlencoded::byte_serialize(by_hash.as_bytes()).collect::<String>()
        )),
        &[AUTH],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["type"], "EPCISQueryDocument");
    assert_eq!(events(&a).len(), 1);
    assert_eq!(events(&a)[0]["epcList"], found[0]["epcList"]);
    // Or by the transaction that recorded it.
    let a = request(
        "GET",
        &url(&format!("/events/urn:tracechain:tx:{}", s.tx_ids[1])),
        &[AUTH],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(events(&a)[0]["epcList"], found[0]["epcList"]);
    for (id, says) in [
        (
            "urn:uuid:6a3a1f6e-0000-4000-8000-000000000000",
            "are found by",
        ),
        (
            "urn:tracechain:tx:0000000000000000000000000000000000000000000000000000000000000000",
            "not recorded",
        ),
        ("urn:tracechain:tx:12", "not a transaction id"),
    ] {
        let a = request("GET", &url(&format!("/events/{id}")), &[AUTH]).await;
        assert_eq!(a.status, 404, "{id}: {}", a.body);
        assert_eq!(a.body["type"], "epcisException:NoSuchResourceException");
        assert!(
            a.body["detail"].as_str().is_some_and(|d| d.contains(says)),
            "{}",
            a.body
        );
    }

    // Paged: two, then the `Link` to the last one, then no link.
    let a = request(
        "GET",
        &url("/events?EQ_bizStep=inspecting&perPage=2"),
        &[AUTH],
    )
    .await;
    assert_eq!(events(&a).len(), 2);
    let link = header(&a, "link").to_string();
    let next = link
        .strip_prefix('<')
        .and_then(|l| l.split_once(">; rel=\"next\""))
        .map(|(u, _)| u.to_string())
        .unwrap_or_else(|| panic!("a next link: {link:?}"));
    assert!(next.starts_with("/events?EQ_bizStep=inspecting&perPage=2&nextPageToken="));
    let last = request("GET", &url(&next), &[AUTH]).await;
    assert_eq!(events(&last).len(), 1, "{}", last.body);
    assert!(last.headers.get("link").is_none());

    // Bad input: each a problem of its type.
    for (path, status, kind) in [
        (
            "/events?MATCH_whatever=x",
            400,
            "epcisException:QueryParameterException",
        ),
        (
            "/events?nextPageToken=1.2.3",
            400,
            "epcisException:QueryParameterException",
        ),
        (
            "/events?perPage=none",
            400,
            "epcisException:QueryParameterException",
        ),
        ("/capture", 501, "epcisException:ImplementationException"),
    ] {
        let a = request("GET", &url(path), &[AUTH]).await;
        assert_eq!(a.status, status, "{path}: {}", a.body);
        assert_eq!(a.body["type"], kind, "{path}");
        assert!(a.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let a = request("POST", &url("/capture"), &[AUTH]).await;
    assert_eq!(a.status, 501);
    let a = request(
        "GET",
        &url("/events"),
        &[AUTH, ("accept", "application/xml")],
    )
    .await;
    assert_eq!(a.status, 406);
    let long = format!(
        "/events?EQ_bizStep={}",
        "x".repeat(gateway::MAX_QUERY_BYTES)
    );
    let a = request("GET", &url(&long), &[AUTH]).await;
    assert_eq!(a.status, 414);
}
