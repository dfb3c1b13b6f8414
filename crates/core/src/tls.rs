//! TLS set-up shared by every client in this crate. rustls is built without a default
//! crypto provider chosen at compile time for all users (reqwest uses `rustls-no-provider`),
//! so the ring provider must be installed once, before the first TLS client is built.

use std::sync::Once;

static INSTALL: Once = Once::new();

/// Installs rustls' ring crypto provider as the process default, once. Safe to call from
/// anywhere, any number of times; if some other code installed a provider first, that one
/// stays (rustls allows only one) and this is a no-op.
pub fn ensure_crypto_provider() {
  INSTALL.call_once(|| {
    // Err means a provider is already installed, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
  });
}

#[cfg(test)]
mod tests {
  #[test]
  fn installing_twice_is_harmless() {
    super::ensure_crypto_provider();
    super::ensure_crypto_provider();
    assert!(rustls::crypto::CryptoProvider::get_default().is_some());
  }
}
