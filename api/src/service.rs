//! The domain service that both transports call: user operations with
//! idempotent creation on top of [`Store`].

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use crate::domain::{Error, ListQuery, NewUser, Page, User, UserPatch};
use crate::store::{IdempotencyRecord, InsertOutcome, Store};

/// How long an idempotency key is honoured.
pub const IDEMPOTENCY_KEY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// User operations shared by REST and gRPC.
pub struct UserService {
    store: Store,
}

impl UserService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates a user. With an idempotency key, a retry with the same input returns
    /// the user created first, and the same key with other input fails.
    #[tracing::instrument(skip_all, fields(idempotent = idempotency_key.is_some()))]
    pub async fn create(&self, new_user: NewUser, idempotency_key: Option<String>) -> Result<User, Error> {
        let fingerprint = new_user.fingerprint();
        if let Some(key) = &idempotency_key
            && let Some(user) = self.replay(key, &fingerprint).await?
        {
            return Ok(user);
        }

        let now = now();
        let user = User {
            id: Uuid::now_v7(),
            name: new_user.name.as_str().to_owned(),
            user_type: new_user.user_type,
            create_time: now,
            update_time: now,
        };
        let response = serde_json::to_string(&user).map_err(|error| Error::Internal(error.into()))?;
        let record = idempotency_key.as_deref().map(|key| IdempotencyRecord {
            key,
            request_hash: &fingerprint,
            response: &response,
        });

        match self.store.insert(&user, record).await? {
            InsertOutcome::Inserted => {
                tracing::info!(user_id = %user.id, "user created");
                Ok(user)
            }
            InsertOutcome::KeyTaken => {
                // A concurrent request with the same key committed first.
                let key = idempotency_key.as_deref().unwrap_or_default();
                self.replay(key, &fingerprint).await?.ok_or_else(|| {
                    Error::Internal(anyhow::anyhow!("idempotency key vanished right after a conflict"))
                })
            }
        }
    }

    /// Returns the stored result for a key, or `None` when the key is unknown or
    /// has expired (an expired key is deleted so it can be used again).
    async fn replay(&self, key: &str, fingerprint: &str) -> Result<Option<User>, Error> {
        let Some(stored) = self.store.find_key(key).await? else {
            return Ok(None);
        };
        if expired(stored.create_time) {
            self.store.delete_key(key).await?;
            return Ok(None);
        }
        if stored.request_hash != fingerprint {
            return Err(Error::IdempotencyKeyReused);
        }
        let user = serde_json::from_str(&stored.response).map_err(|error| Error::Internal(error.into()))?;
        tracing::info!("idempotent retry returned the stored result");
        Ok(Some(user))
    }

    pub async fn get(&self, id: Uuid) -> Result<User, Error> {
        self.store.find(id).await?.ok_or(Error::NotFound(id))
    }

    pub async fn list(&self, query: ListQuery) -> Result<Page, Error> {
        self.store.list(query).await
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn update(&self, id: Uuid, patch: UserPatch) -> Result<User, Error> {
        patch.require_change()?;
        let user = self.store.update(id, &patch, now()).await?.ok_or(Error::NotFound(id))?;
        tracing::info!("user updated");
        Ok(user)
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn delete(&self, id: Uuid) -> Result<(), Error> {
        if !self.store.delete(id).await? {
            return Err(Error::NotFound(id));
        }
        tracing::info!("user deleted");
        Ok(())
    }

    /// Deletes idempotency keys older than the retention period.
    pub async fn purge_expired_keys(&self) -> Result<u64, Error> {
        let cutoff = Utc::now() - IDEMPOTENCY_KEY_RETENTION;
        self.store.delete_keys_before(cutoff).await
    }
}

/// Returns the current time at the microsecond precision that every backend stores, so
/// a returned user equals the same user read back later.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn expired(created: DateTime<Utc>) -> bool {
    created < Utc::now() - IDEMPOTENCY_KEY_RETENTION
}
