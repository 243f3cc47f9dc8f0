//! HTTPS and WSS on the server's one port (docs/SECURITY.md, "TLS"): `server.tls_cert` and
//! `server.tls_key` (PEM files) turn it on, served by rustls (with the `ring` provider). The
//! certificate is read again on SIGHUP (`Certificates::reload`): new connections get the new
//! one, connections already open keep theirs, so no session is dropped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The certificate in use, and where it is read from.
#[derive(Debug)]
pub struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    /// Reads the certificate chain and its key.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        // ring rather than aws-lc-rs (a large C build); its key exchanges lack the
        // post-quantum hybrid, for which rustls marks it deprecated (docs/SECURITY.md).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = read(cert, key, &provider)?;
        Ok(Arc::new(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            current: RwLock::new(current),
        }))
    }

    /// Reads the files again; on any problem the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = read(&self.cert, &self.key, &self.provider)?;
        match self.current.write() {
            Ok(mut current) => *current = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    /// The rustls configuration serving these certificates (HTTP/1.1, as the server speaks).
    pub fn server_config(self: &Arc<Self>) -> Result<ServerConfig, TlsError> {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = match self.current.read() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        Some(Arc::clone(&current))
    }
}

fn read(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
    let problem = |path: &Path, problem: String| TlsError::File { path: path.to_owned(), problem };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| problem(cert, format!("not a PEM certificate chain ({err})")))?;
    if chain.is_empty() {
        return Err(problem(cert, "holds no certificate".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|err| problem(key, format!("not a PEM private key ({err})")))?;
    let signing = provider.key_provider.load_private_key(private)?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|err| problem(key, format!("does not match the certificate ({err})")))?;
    Ok(Arc::new(certified))
}
