//! The enumerated columns: a device's role and a device's sync status, stored as their names.
//!
//! They are defined here, beside their columns, because sea-orm's `DeriveActiveEnum` maps a
//! column to the enum; the server's domain uses these same types.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A device's role in the fleet.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[sea_orm(string_value = "master")]
    Master,
    #[sea_orm(string_value = "client")]
    Client,
}

impl Role {
    /// The role's name, as stored and as the protocol sends it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Master => "master",
            Self::Client => "client",
        }
    }
}

/// Where a device's sync stands.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    /// Changes wait for it (and the state a device starts in).
    #[sea_orm(string_value = "pending")]
    Pending,
    /// A sync is under way.
    #[sea_orm(string_value = "syncing")]
    Syncing,
    /// It confirmed a sync.
    #[sea_orm(string_value = "synced")]
    Synced,
    /// Its last sync failed.
    #[sea_orm(string_value = "error")]
    Error,
}

impl SyncStatus {
    /// The status's name, as stored and as the protocol sends it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Syncing => "syncing",
            Self::Synced => "synced",
            Self::Error => "error",
        }
    }
}
