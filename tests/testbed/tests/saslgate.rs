//! The SASL gate driven byte by byte, as a client that is not librdkafka would: the v0 handshake
//! (raw SASL tokens), refusals before authentication, and the splice afterwards. librdkafka's own
//! paths (v1 handshake, SaslAuthenticate) are covered end to end in tests/e2e.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use testbed::saslgate::wire::{self, Reader, Writer};
use testbed::saslgate::{Gate, GateConfig, GateEvent, Mechanism};

/// An upstream that echoes whatever it gets, standing in for the broker after authentication.
async fn echo_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    address
}

async fn gate() -> Gate {
    let config = GateConfig {
        mechanisms: [Mechanism::Plain].into_iter().collect(),
        users: [("alice".to_string(), "wonderland".to_string())]
            .into_iter()
            .collect(),
        tokens: None,
    };
    Gate::start(0, &echo_upstream().await, config)
        .await
        .expect("gate")
}

fn request(api_key: i16, api_version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    w.i16(api_key);
    w.i16(api_version);
    w.i32(correlation_id);
    w.nullable_string(Some("test"));
    w.0.extend_from_slice(body);
    w.0
}

async fn read(stream: &mut TcpStream) -> Option<Vec<u8>> {
    wire::read_frame(stream, 1 << 20).await.expect("read")
}

#[tokio::test]
async fn a_v0_handshake_takes_raw_tokens_then_the_connection_is_spliced() {
    let gate = gate().await;
    let mut client = TcpStream::connect(gate.address()).await.expect("connect");
    let mut body = Writer::default();
    body.string("PLAIN");
    wire::write_frame(&mut client, &request(wire::SASL_HANDSHAKE, 0, 1, &body.0))
        .await
        .expect("write");
    let response = read(&mut client).await.expect("handshake answer");
    let mut r = Reader::new(&response);
    assert_eq!(r.i32(), Ok(1), "correlation id");
    assert_eq!(r.i16(), Ok(0), "no error");
    assert_eq!(r.i32(), Ok(1), "one mechanism enabled");
    assert_eq!(r.string(), Ok("PLAIN".to_string()));

    // v0: the token is a bare size-prefixed frame, and so is the (empty) answer.
    wire::write_frame(&mut client, b"\0alice\0wonderland")
        .await
        .expect("write");
    assert_eq!(read(&mut client).await, Some(Vec::new()));
    // From here on, bytes go to the broker (an echo here) untouched.
    client.write_all(b"spliced").await.expect("write");
    let mut echoed = [0u8; 7];
    client.read_exact(&mut echoed).await.expect("echo");
    assert_eq!(&echoed, b"spliced");
    assert_eq!(
        gate.events(),
        [GateEvent::Authenticated {
            mechanism: "PLAIN".into(),
            principal: "alice".into()
        }]
    );
}

#[tokio::test]
async fn requests_before_authentication_are_refused_and_the_connection_closed() {
    let gate = gate().await;

    // Metadata (api key 3) first: closed, nothing answered.
    let mut client = TcpStream::connect(gate.address()).await.expect("connect");
    wire::write_frame(&mut client, &request(3, 12, 7, &[]))
        .await
        .expect("write");
    assert_eq!(read(&mut client).await, None, "closed without an answer");

    // SaslAuthenticate before SaslHandshake: ILLEGAL_SASL_STATE, then closed.
    let mut client = TcpStream::connect(gate.address()).await.expect("connect");
    let mut body = Writer::default();
    body.bytes(b"\0alice\0wonderland");
    wire::write_frame(
        &mut client,
        &request(wire::SASL_AUTHENTICATE, 1, 8, &body.0),
    )
    .await
    .expect("write");
    let response = read(&mut client).await.expect("an answer");
    let mut r = Reader::new(&response);
    assert_eq!(r.i32(), Ok(8));
    assert_eq!(r.i16(), Ok(wire::code::ILLEGAL_SASL_STATE));
    assert_eq!(read(&mut client).await, None, "then closed");

    // A mechanism that is not enabled: UNSUPPORTED_SASL_MECHANISM with the enabled list.
    let mut client = TcpStream::connect(gate.address()).await.expect("connect");
    let mut body = Writer::default();
    body.string("SCRAM-SHA-256");
    wire::write_frame(&mut client, &request(wire::SASL_HANDSHAKE, 1, 9, &body.0))
        .await
        .expect("write");
    let response = read(&mut client).await.expect("an answer");
    let mut r = Reader::new(&response);
    assert_eq!(r.i32(), Ok(9));
    assert_eq!(r.i16(), Ok(wire::code::UNSUPPORTED_SASL_MECHANISM));
    assert_eq!(r.i32(), Ok(1));
    assert_eq!(r.string(), Ok("PLAIN".to_string()));
    assert_eq!(read(&mut client).await, None, "then closed");

    // A wrong password over SaslAuthenticate v1: SASL_AUTHENTICATION_FAILED with Kafka's wording.
    let mut client = TcpStream::connect(gate.address()).await.expect("connect");
    let mut body = Writer::default();
    body.string("PLAIN");
    wire::write_frame(&mut client, &request(wire::SASL_HANDSHAKE, 1, 10, &body.0))
        .await
        .expect("write");
    read(&mut client).await.expect("handshake answer");
    let mut body = Writer::default();
    body.bytes(b"\0alice\0queen-of-hearts");
    wire::write_frame(
        &mut client,
        &request(wire::SASL_AUTHENTICATE, 1, 11, &body.0),
    )
    .await
    .expect("write");
    let response = read(&mut client).await.expect("an answer");
    let mut r = Reader::new(&response);
    assert_eq!(r.i32(), Ok(11));
    assert_eq!(r.i16(), Ok(wire::code::SASL_AUTHENTICATION_FAILED));
    let message = r.nullable_string().expect("message").expect("not null");
    assert_eq!(
        message,
        "Authentication failed: Invalid username or password"
    );
    assert!(!message.contains("queen-of-hearts"));
    assert_eq!(read(&mut client).await, None, "then closed");

    let refused: Vec<String> = gate
        .events()
        .into_iter()
        .filter_map(|e| match e {
            GateEvent::Refused { reason } => Some(reason),
            GateEvent::Authenticated { .. } => None,
        })
        .collect();
    assert_eq!(
        refused,
        [
            "Metadata before authentication",
            "SaslAuthenticate before SaslHandshake",
            "unsupported SASL mechanism SCRAM-SHA-256",
            "Authentication failed: Invalid username or password",
        ]
    );
}
