//! A [`KeyProvider`] backed by AWS KMS: data keys come from `GenerateDataKey` (AES_256) and are
//! unwrapped with `Decrypt`; the master key never leaves KMS. Requests are KMS's JSON protocol over
//! HTTPS, signed with SigV4 from the usual environment credentials (Lambda provides them).

use std::time::SystemTime;

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;
use facegate_store::WrappedKey;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::GalleryError;
use crate::crypto::{DataKey, KeyProvider};

/// Where and as whom to call KMS.
#[derive(Clone)]
pub struct KmsConfig {
    /// Key id, ARN or alias of the KMS key that wraps data keys.
    pub key_id: String,
    /// AWS region.
    pub region: String,
    /// Endpoint override (a local KMS such as moto_server in tests); default `https://kms.<region>.amazonaws.com`.
    pub endpoint: Option<String>,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token of temporary credentials.
    pub session_token: Option<String>,
}

/// KMS-backed data keys.
pub struct KmsKeyProvider {
    config: KmsConfig,
    endpoint: String,
    http: reqwest::Client,
}

impl KmsKeyProvider {
    /// A provider for one KMS key.
    pub fn new(config: KmsConfig) -> Self {
        let endpoint =
            config.endpoint.clone().unwrap_or_else(|| format!("https://kms.{}.amazonaws.com/", config.region));
        Self { config, endpoint, http: reqwest::Client::new() }
    }

    async fn call(&self, operation: &str, body: Value) -> Result<Value, GalleryError> {
        let failure = |what: String| GalleryError::Crypto(format!("KMS {operation}: {what}"));
        let payload = body.to_string();
        let target = format!("TrentService.{operation}");
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        let identity: Identity = Credentials::new(
            &self.config.access_key_id,
            &self.config.secret_access_key,
            self.config.session_token.clone(),
            None,
            "facegate",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.config.region)
            .name("kms")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| failure(e.to_string()))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(payload.as_bytes()),
        )
        .map_err(|e| failure(e.to_string()))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| failure(e.to_string()))?.into_parts();
        let mut request = self.http.post(&self.endpoint).body(payload.clone());
        for (name, value) in headers.iter().copied().chain(instructions.headers()) {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| failure(e.to_string()))?;
        let status = response.status();
        let answer: Value = response.json().await.map_err(|e| failure(e.to_string()))?;
        if !status.is_success() {
            return Err(failure(format!(
                "{status}: {}",
                answer["message"].as_str().or(answer["Message"].as_str()).unwrap_or("error")
            )));
        }
        Ok(answer)
    }
}

fn decode(value: &Value, field: &str) -> Result<Vec<u8>, GalleryError> {
    let text = value[field].as_str().ok_or_else(|| GalleryError::Crypto(format!("KMS answer lacks {field}")))?;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| GalleryError::Crypto(format!("KMS {field} is not base64")))
}

#[async_trait]
impl KeyProvider for KmsKeyProvider {
    fn name(&self) -> &'static str {
        "kms"
    }

    async fn generate_data_key(&self) -> Result<WrappedKey, GalleryError> {
        let answer = self.call("GenerateDataKey", json!({ "KeyId": self.config.key_id, "KeySpec": "AES_256" })).await?;
        let key_id = answer["KeyId"].as_str().unwrap_or(&self.config.key_id).to_string();
        Ok(WrappedKey {
            provider: self.name().into(),
            master_key_id: key_id,
            ciphertext: decode(&answer, "CiphertextBlob")?,
        })
    }

    async fn unwrap_data_key(&self, wrapped: &WrappedKey) -> Result<DataKey, GalleryError> {
        if wrapped.provider != self.name() {
            return Err(GalleryError::Crypto(format!(
                "data key was wrapped by the {} provider, not KMS",
                wrapped.provider
            )));
        }
        let blob = base64::engine::general_purpose::STANDARD.encode(&wrapped.ciphertext);
        let answer = self.call("Decrypt", json!({ "CiphertextBlob": blob, "KeyId": wrapped.master_key_id })).await?;
        let plain = Zeroizing::new(decode(&answer, "Plaintext")?);
        let key: [u8; 32] =
            plain.as_slice().try_into().map_err(|_| GalleryError::Crypto("KMS data key is not 32 bytes".into()))?;
        Ok(Zeroizing::new(key))
    }
}
