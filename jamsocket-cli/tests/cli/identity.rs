//! Tokens and sessions through the real binary: `--auth-jwt-secret`, `--auth-jwt-public-key`
//! with keys `openssl` generates, and `--reconnect-grace`.

use crate::common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::process::Command;

fn claims() -> serde_json::Value {
    let exp = jsonwebtoken::get_current_timestamp() + 600;
    serde_json::json!({"sub": "alice", "exp": exp})
}

#[test]
fn a_secret_from_the_command_line_guards_every_room() {
    let wasm = build_example("conformance-service");
    let server = Running::start(&["serve", &wasm, "--port", "0", "--auth-jwt-secret", "s3cret"]);
    let (status, body) = server.http_get("/ws/room");
    assert_eq!(status, 401);
    assert!(body.contains("no token"), "{body}");
    let key = EncodingKey::from_secret(b"s3cret").unwrap();
    let token = jsonwebtoken::encode(&Header::default(), &claims(), &key).unwrap();
    assert_eq!(server.http_get(&format!("/ws/room?token={token}")).0, 426);
    assert_eq!(server.handshake("room", None), 401);
}

#[test]
fn public_keys_of_each_kind_verify_tokens_signed_with_their_private_half() {
    let wasm = build_example("conformance-service");
    let dir = TempDir::new("jwt-keys");
    let kinds: [(&str, &[&str], Algorithm); 3] = [
        ("ed25519", &["-algorithm", "ed25519"], Algorithm::EdDSA),
        (
            "p256",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Algorithm::ES256,
        ),
        (
            "rsa",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Algorithm::RS256,
        ),
    ];
    for (name, options, algorithm) in kinds {
        let private = dir.0.join(format!("{name}.pem"));
        let public = dir.0.join(format!("{name}.pub.pem"));
        let generated = Command::new("openssl")
            .arg("genpkey")
            .args(options)
            .arg("-out")
            .arg(&private)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl is needed to generate test keys");
        assert!(generated.success(), "{name}");
        let extracted = Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public)
            .status()
            .unwrap();
        assert!(extracted.success(), "{name}");
        let pem = std::fs::read(&private).unwrap();
        let key = match algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            _ => EncodingKey::from_rsa_pem(&pem),
        }
        .unwrap();
        let token = jsonwebtoken::encode(&Header::new(algorithm), &claims(), &key).unwrap();
        let server = Running::start(&[
            "serve",
            &wasm,
            "--port",
            "0",
            "--auth-jwt-public-key",
            public.to_str().unwrap(),
        ]);
        assert_eq!(
            server.http_get(&format!("/ws/room?token={token}")).0,
            426,
            "{name}"
        );
        let forged = EncodingKey::from_secret(b"guess").unwrap();
        let forged = jsonwebtoken::encode(&Header::default(), &claims(), &forged).unwrap();
        let (status, body) = server.http_get(&format!("/ws/room?token={forged}"));
        assert_eq!(status, 401, "{name}: {body}");
    }
}

#[test]
fn a_key_file_that_is_missing_or_not_a_key_says_what_to_pass() {
    let wasm = build_example("conformance-service");
    let dir = TempDir::new("jwt-bad-keys");
    let not_a_key = dir.0.join("notes.txt");
    std::fs::write(&not_a_key, "hello").unwrap();
    for path in [dir.0.join("missing.pem"), not_a_key] {
        let path = path.to_str().unwrap();
        let output = run(&["serve", &wasm, "--auth-jwt-public-key", path]);
        assert!(!output.status.success());
        let err = stderr(&output);
        assert!(err.contains(path), "{err}");
        assert!(err.contains("PEM"), "{err}");
    }
    let output = run(&["serve", &wasm, "--reconnect-grace", "soon"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("30s, 500ms or 2m"));
}
