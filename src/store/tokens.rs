//! Credentials issued to single devices (`device_tokens`): a hash of each secret, never the
//! secret. Written by the Persistence actor (`FleetWrite::Token`), or by `device-sync token`
//! with the server stopped or running (SQLite and Postgres both take a second writer); read by
//! `http::auth` when a token is presented, and by each node's check for revocations.

use chrono::{DateTime, Utc};
use entity::device_token;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use crate::domain::fleet::IssuedToken;

pub async fn issue<C: ConnectionTrait>(txn: &C, now: DateTime<Utc>, token: IssuedToken) -> Result<(), DbErr> {
    device_token::Entity::insert(device_token::ActiveModel {
        id: Set(token.id),
        device_id: Set(token.device_id),
        secret_hash: Set(token.secret_hash),
        issued_by: Set(token.issued_by),
        created_at: Set(now),
        revoked_at: Set(None),
    })
    .exec(txn)
    .await
    .map(|_| ())
}

/// Revokes every live token of `device_id`; returns how many there were.
pub async fn revoke<C: ConnectionTrait>(txn: &C, now: DateTime<Utc>, device_id: &str) -> Result<u64, DbErr> {
    let done = device_token::Entity::update_many()
        .col_expr(device_token::Column::RevokedAt, Expr::value(now))
        .filter(device_token::Column::DeviceId.eq(device_id))
        .filter(device_token::Column::RevokedAt.is_null())
        .exec(txn)
        .await?;
    Ok(done.rows_affected)
}

pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<device_token::Model>, DbErr> {
    device_token::Entity::find_by_id(id.to_owned()).one(db).await
}

/// The tokens of `device_id`, oldest first.
pub async fn of_device<C: ConnectionTrait>(
    db: &C,
    device_id: &str,
) -> Result<Vec<device_token::Model>, DbErr> {
    device_token::Entity::find()
        .filter(device_token::Column::DeviceId.eq(device_id))
        .order_by_asc(device_token::Column::CreatedAt)
        .all(db)
        .await
}

/// The ids of tokens revoked at or after `since`.
pub async fn revoked_since<C: ConnectionTrait>(db: &C, since: DateTime<Utc>) -> Result<Vec<String>, DbErr> {
    let rows =
        device_token::Entity::find().filter(device_token::Column::RevokedAt.gte(since)).all(db).await?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}
