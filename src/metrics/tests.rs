use super::*;
use crate::link::Start;
use crate::proto::{Welcome, T_CALL_OFFERED, T_HEARTBEAT};

fn text(m: &Metrics) -> String {
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &m.registry).unwrap();
    out
}

/// The value of the sample `line` (name and labels as printed), if present.
fn sample(text: &str, line: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn every_name_has_the_prefix_and_counters_end_in_total() {
    let m = Metrics::new("srv-a");
    let _a = m.acd(1);
    let t = text(&m);
    for l in t.lines().filter(|l| !l.starts_with('#')) {
        assert!(l.starts_with("cms_"), "{l}");
    }
    for l in t.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = l.split_once(' ').unwrap();
        assert_eq!(kind == "counter", name.ends_with("_total"), "{l}");
    }
    assert_eq!(
        sample(&t, "cms_build_info{version=\"0.1.0\",server_id=\"srv-a\"}"),
        Some(1.0),
        "{t}"
    );
    assert_eq!(
        sample(&t, "cms_link_state{acd=\"1\",state=\"never connected\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&t, "cms_link_reconnects_total{acd=\"1\"}"),
        Some(0.0)
    );
}

#[test]
fn frames_events_and_the_link_state_are_counted() {
    let m = Metrics::new("srv-a");
    let mut a = m.acd(2);
    for _ in 0..3 {
        a.frame(T_CALL_OFFERED);
    }
    a.event(T_CALL_OFFERED);
    a.frame(T_HEARTBEAT);
    a.event(T_HEARTBEAT); // not an event type: not counted as one
    a.frame(0xee); // not a protocol type: not counted
    a.reconnected();
    m.set_link(2, LinkState::DataTransfer, "");
    // Counted in the task's own integers: nothing shared before the flush.
    assert_eq!(
        sample(
            &text(&m),
            "cms_frames_received_total{acd=\"2\",type=\"call_offered\"}"
        ),
        Some(0.0)
    );
    a.flush();
    let t = text(&m);
    let s = |l: &str| sample(&t, l);
    assert_eq!(
        s("cms_frames_received_total{acd=\"2\",type=\"call_offered\"}"),
        Some(3.0)
    );
    assert_eq!(
        s("cms_frames_received_total{acd=\"2\",type=\"heartbeat\"}"),
        Some(1.0)
    );
    assert_eq!(
        s("cms_events_received_total{acd=\"2\",type=\"call_offered\"}"),
        Some(1.0)
    );
    assert_eq!(
        s("cms_events_received_total{acd=\"2\",type=\"heartbeat\"}"),
        None
    );
    assert_eq!(s("cms_link_reconnects_total{acd=\"2\"}"), Some(1.0));
    assert_eq!(
        s("cms_link_state{acd=\"2\",state=\"data_transfer\"}"),
        Some(1.0)
    );
    assert_eq!(
        s("cms_link_state{acd=\"2\",state=\"never connected\"}"),
        Some(0.0)
    );
    assert_eq!(m.link(2), (LinkState::DataTransfer, String::new()));
}

#[test]
fn a_pumpup_handshake_counts_its_records() {
    let m = Metrics::new("srv-a");
    let mut a = m.acd(1);
    let vdn = crate::proto::VdnDef {
        vdn: 1,
        service_level: 20,
        name: "sales".into(),
    };
    let p = crate::agg::Pumpup {
        vdns: vec![vdn; 4],
        ..Default::default()
    };
    let welcome = Welcome {
        version: 1,
        acd: 1,
        epoch: 3,
        mode: crate::proto::StartMode::Pumpup,
        first_seq: 10,
        switch_ts: 0,
        heartbeat_ms: 1000,
    };
    a.handshake(&Start::Pumpup {
        welcome,
        pumpup: Box::new(p),
        gap: Some((5, 9)),
        first: None,
    });
    let t = text(&m);
    let s = |ty: &str| {
        sample(
            &t,
            &format!("cms_frames_received_total{{acd=\"1\",type=\"{ty}\"}}"),
        )
    };
    assert_eq!(s("welcome"), Some(1.0));
    assert_eq!(s("pumpup_begin"), Some(1.0));
    assert_eq!(s("snap_vdn"), Some(4.0));
    assert_eq!(s("snap_skill"), Some(0.0));
    assert_eq!(s("pumpup_end"), Some(1.0));
    assert_eq!(s("gap"), Some(1.0));
}

#[test]
fn bad_input_is_told_from_a_link_going_away() {
    let peer: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    let proto = LinkError::Protocol {
        peer,
        what: "seq".into(),
    };
    let eof = LinkError::Codec {
        peer,
        source: CodecError::Io(std::io::ErrorKind::UnexpectedEof.into()),
    };
    assert_eq!(bad_input_reason(&proto), Some("protocol_violation"));
    assert_eq!(bad_input_reason(&eof), Some("truncated_frame"));
    assert_eq!(bad_input_reason(&LinkError::Closed { peer }), None);
    let m = Metrics::new("srv-a");
    let _a = m.acd(1);
    m.session_failed(1, &proto);
    m.session_failed(1, &LinkError::Closed { peer });
    let t = text(&m);
    let s = |r: &str| {
        sample(
            &t,
            &format!("cms_bad_input_total{{acd=\"1\",reason=\"{r}\"}}"),
        )
    };
    assert_eq!(s("protocol_violation"), Some(1.0));
    assert_eq!(s("malformed_frame"), Some(0.0));
}
