use super::*;

fn http(text: &str) -> Result<HttpConfig, String> {
    let raw: RawHttp = toml::from_str(text).map_err(|e| e.to_string())?;
    raw.validate()
}

#[test]
fn the_default_is_loopback_without_a_token() {
    let h = http("").unwrap();
    assert!(h.enabled);
    assert_eq!(h.listen.to_string(), DEFAULT_LISTEN);
    assert!(!h.needs_token());
    assert_eq!(Config::embedded_default().http.listen, h.listen);
}

#[test]
fn a_non_loopback_listen_needs_a_token() {
    let e = http("listen = \"0.0.0.0:9464\"").unwrap_err();
    assert!(
        e.contains("http.listen = \"0.0.0.0:9464\" is not a loopback address"),
        "{e}"
    );
    let h = http("listen = \"[::]:9464\"\ntoken = \"0123456789abcdef\"").unwrap();
    assert!(h.needs_token());
    // IPv6 loopback is loopback; a disabled server needs nothing.
    assert!(!http("listen = \"[::1]:9464\"").unwrap().needs_token());
    assert!(
        !http("enabled = false\nlisten = \"0.0.0.0:1\"")
            .unwrap()
            .enabled
    );
}

#[test]
fn bad_values_name_the_key() {
    let e = http("listen = \"localhost\"").unwrap_err();
    assert!(
        e.starts_with("http.listen = \"localhost\": not IP:PORT"),
        "{e}"
    );
    let e = http("token = \"short\"").unwrap_err();
    assert!(e.starts_with("http.token: must be at least 16"), "{e}");
    let e = http("token = \"0123456789 abcdef\"").unwrap_err();
    assert!(e.starts_with("http.token"), "{e}");
    assert!(http("port = 1").unwrap_err().contains("unknown field"));
}

#[test]
fn the_token_must_match_exactly() {
    let t = "0123456789abcdef";
    assert!(token_matches(t, t));
    assert!(!token_matches("0123456789abcdeF", t));
    assert!(!token_matches("0123456789abcde", t));
    assert!(!token_matches("", t));
}

#[test]
fn the_token_comes_as_bearer_or_as_a_basic_password() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(presented("Bearer abc").as_deref(), Some("abc"));
    let basic = format!("Basic {}", b64("supervisor:0123456789abcdef"));
    assert_eq!(presented(&basic).as_deref(), Some("0123456789abcdef"));
    // A password may hold a colon; the user name may be empty.
    let basic = format!("Basic {}", b64(":a:b"));
    assert_eq!(presented(&basic).as_deref(), Some("a:b"));
    for bad in ["Basic !!!", "Basic", "Digest x", "bearer abc", ""] {
        assert_eq!(presented(bad), None, "{bad}");
    }
    assert_eq!(presented(&format!("Basic {}", b64("no-colon"))), None);
}
