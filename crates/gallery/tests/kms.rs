//! The KMS key provider against a local KMS: `moto_server` (from pip), which speaks the KMS API on
//! loopback and stands in for AWS KMS here. `scripts/test.sh` installs it.
#![cfg(feature = "kms")]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use facegate_gallery::kms::{KmsConfig, KmsKeyProvider};
use facegate_gallery::{FaceToEnroll, Gallery, KeyProvider, TemplateCipher, TemplatePacks};
use facegate_store::{FaceStore, PackVersion};
use facegate_store_sqlite::SqliteStore;
use facegate_testing::KillOnDrop;
use serde_json::Value;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

async fn start_moto() -> (KillOnDrop, String) {
    let port = free_port();
    let moto = KillOnDrop(
        Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server runs (pip install 'moto[server]'; scripts/test.sh does)"),
    );
    let endpoint = format!("http://127.0.0.1:{port}/");
    for _ in 0..100 {
        if reqwest::get(format!("{endpoint}moto-api/")).await.is_ok() {
            return (moto, endpoint);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto_server did not start");
}

async fn create_key(endpoint: &str) -> String {
    let created: Value = reqwest::Client::new()
        .post(endpoint)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "TrentService.CreateKey")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body("{}")
        .send()
        .await
        .expect("CreateKey")
        .json()
        .await
        .expect("json");
    created["KeyMetadata"]["KeyId"].as_str().expect("key id").to_string()
}

fn provider(endpoint: &str, key_id: &str) -> KmsKeyProvider {
    KmsKeyProvider::new(KmsConfig {
        key_id: key_id.into(),
        region: "us-east-1".into(),
        endpoint: Some(endpoint.into()),
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
        session_token: None,
    })
}

#[tokio::test]
async fn data_keys_round_trip_through_kms() {
    let (_moto, endpoint) = start_moto().await;
    let key_id = create_key(&endpoint).await;
    let kms = provider(&endpoint, &key_id);
    let wrapped = kms.generate_data_key().await.expect("GenerateDataKey");
    assert_eq!(wrapped.provider, "kms");
    assert!(wrapped.ciphertext.len() > 32, "only the wrapped key is kept");
    let first = kms.unwrap_data_key(&wrapped).await.expect("Decrypt");
    let second = kms.unwrap_data_key(&wrapped).await.expect("Decrypt again");
    assert_eq!(first.as_ref(), second.as_ref());
    let sealed = TemplateCipher::new(&first).seal(&[0.25, -0.5], "c/f").expect("seal");
    assert_eq!(TemplateCipher::new(&second).open(&sealed, "c/f").expect("open"), vec![0.25, -0.5]);
    let mut tampered = wrapped.clone();
    tampered.ciphertext[10] ^= 0xff;
    assert!(kms.unwrap_data_key(&tampered).await.is_err(), "a tampered wrapped key is refused");
}

#[tokio::test]
async fn a_gallery_encrypts_with_kms_data_keys() {
    let (_moto, endpoint) = start_moto().await;
    let key_id = create_key(&endpoint).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn FaceStore> = Arc::new(SqliteStore::open(&dir.path().join("g.db")).expect("store"));
    let gallery = Gallery::new(store.clone(), Arc::new(provider(&endpoint, &key_id)));
    let tenant = store.create_tenant("kms", 0).await.expect("tenant");
    let collection = facegate_store_conformance::create_collection(store.as_ref(), &tenant.id, "c", 3).await;
    let subject = facegate_store_conformance::subject("s");
    let subject = store.create_subject(&tenant.id, &collection.id, &subject).await.expect("subject");
    let face = FaceToEnroll {
        template: vec![0.6, 0.8, 0.0],
        detection_score: 0.9,
        sharpness: 100.0,
        face_size: 100.0,
        ..Default::default()
    };
    let audit = facegate_store_conformance::audit(&collection.id, 0);
    let packs = TemplatePacks { current: PackVersion { pack: "default".into(), version: "v".into() }, target: None };
    gallery.store_faces(&tenant.id, &collection, &subject.id, &[face], &audit, &packs).await.expect("enrol");
    assert_eq!(store.data_key(&tenant.id).await.expect("key").map(|k| k.provider), Some("kms".into()));
    // A fresh gallery (a new Lambda instance) unwraps the stored data key through KMS again.
    let fresh = Gallery::new(store.clone(), Arc::new(provider(&endpoint, &key_id)));
    let templates = fresh.subject_templates(&tenant.id, &collection.id, &subject.id).await.expect("templates");
    assert_eq!(templates, vec![vec![0.6, 0.8, 0.0]]);
}
