//! Groups and teams with their members. Both are named sets of users; they differ in use:
//! groups are what policies grant to, teams own secrets. They live in separate tables so a
//! foreign key can keep a secret's owner a team. Membership changes and disabling are announced
//! as change events because they change what people may do.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::changes::{ChangeKind, append_change};
use crate::error::{
    EntityKind, StoreError, StoreResult, database, is_foreign_key_violation, is_unique_violation,
};
use crate::store::Store;
use crate::time::Timestamp;
use crate::users::user_not_found;

/// Which kind of named set of users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKind {
    /// A group, what policies grant to.
    Group,
    /// A team, what owns secrets.
    Team,
}

impl GroupKind {
    /// `group` or `team`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Group => "group",
            Self::Team => "team",
        }
    }

    fn entity(self) -> EntityKind {
        match self {
            Self::Group => EntityKind::Group,
            Self::Team => EntityKind::Team,
        }
    }

    fn table(self) -> &'static str {
        match self {
            Self::Group => "user_groups",
            Self::Team => "teams",
        }
    }

    fn members_table(self) -> &'static str {
        match self {
            Self::Group => "group_members",
            Self::Team => "team_members",
        }
    }

    fn member_column(self) -> &'static str {
        match self {
            Self::Group => "group_name",
            Self::Team => "team_name",
        }
    }

    /// The subject of change events about this group: `group:NAME` or `team:NAME`.
    fn subject(self, name: &str) -> String {
        format!("{}:{name}", self.as_str())
    }
}

/// A group or team as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Group or team.
    pub kind: GroupKind,
    /// The unique name within its kind.
    pub name: String,
    /// What the group is for.
    pub description: String,
    /// When it was added.
    pub created_at: Timestamp,
    /// When it was disabled; a disabled group grants nothing. `None` while enabled.
    pub disabled_at: Option<Timestamp>,
}

/// The enabled groups and teams a user belongs to, each by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memberships {
    /// Group names.
    pub groups: Vec<String>,
    /// Team names.
    pub teams: Vec<String>,
}

impl Store {
    /// Adds an enabled group or team.
    pub async fn add_group(
        &self,
        kind: GroupKind,
        name: &str,
        description: &str,
    ) -> StoreResult<Group> {
        let group = Group {
            kind,
            name: name.to_owned(),
            description: description.to_owned(),
            created_at: Timestamp::now(),
            disabled_at: None,
        };
        let sql = format!(
            "INSERT INTO {} (name, description, created_at, disabled_at) VALUES ($1, $2, $3, NULL)",
            kind.table()
        );
        sqlx::query(&sql)
            .bind(name)
            .bind(description)
            .bind(group.created_at.as_unix_millis())
            .execute(self.pool())
            .await
            .map_err(|error| {
                if is_unique_violation(&error) {
                    StoreError::AlreadyExists {
                        kind: kind.entity(),
                        name: name.to_owned(),
                    }
                } else {
                    database("adding a group or team")(error)
                }
            })?;
        Ok(group)
    }

    /// The group or team named `name`.
    pub async fn group(&self, kind: GroupKind, name: &str) -> StoreResult<Group> {
        let sql = format!(
            "SELECT name, description, created_at, disabled_at FROM {} WHERE name = $1",
            kind.table()
        );
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(database("reading a group or team"))?;
        match row {
            Some(row) => group_from_row(kind, &row).map_err(database("reading a group or team")),
            None => Err(group_not_found(kind, name)),
        }
    }

    /// Every group or every team, by name.
    pub async fn list_groups(&self, kind: GroupKind) -> StoreResult<Vec<Group>> {
        let sql = format!(
            "SELECT name, description, created_at, disabled_at FROM {} ORDER BY name",
            kind.table()
        );
        let rows = sqlx::query(&sql)
            .fetch_all(self.pool())
            .await
            .map_err(database("listing groups or teams"))?;
        rows.iter()
            .map(|row| group_from_row(kind, row))
            .collect::<Result<_, _>>()
            .map_err(database("listing groups or teams"))
    }

    /// Disables a group or team (keeping the first disabling time) and announces
    /// [`ChangeKind::GroupChanged`].
    pub async fn disable_group(&self, kind: GroupKind, name: &str) -> StoreResult<Group> {
        const OPERATION: &str = "disabling a group or team";
        let mut transaction = self.begin_write(OPERATION).await?;
        let sql = format!(
            "UPDATE {} SET disabled_at = COALESCE(disabled_at, $2) WHERE name = $1 \
             RETURNING name, description, created_at, disabled_at",
            kind.table()
        );
        let row = sqlx::query(&sql)
            .bind(name)
            .bind(Timestamp::now().as_unix_millis())
            .fetch_optional(&mut *transaction)
            .await
            .map_err(database(OPERATION))?;
        let Some(row) = row else {
            return Err(group_not_found(kind, name));
        };
        let group = group_from_row(kind, &row).map_err(database(OPERATION))?;
        append_change(
            &mut transaction,
            &ChangeKind::GroupChanged,
            &kind.subject(name),
        )
        .await?;
        transaction.commit().await.map_err(database(OPERATION))?;
        self.changes_committed();
        Ok(group)
    }

    /// Removes a group or team with its memberships and announces [`ChangeKind::GroupChanged`].
    /// A team that still owns secrets is kept: [`StoreError::TeamOwnsSecrets`].
    pub async fn remove_group(&self, kind: GroupKind, name: &str) -> StoreResult<()> {
        const OPERATION: &str = "removing a group or team";
        let mut transaction = self.begin_write(OPERATION).await?;
        let sql = format!("DELETE FROM {} WHERE name = $1", kind.table());
        let removed = sqlx::query(&sql)
            .bind(name)
            .execute(&mut *transaction)
            .await;
        let removed = match removed {
            Ok(removed) => removed,
            Err(error) if is_foreign_key_violation(&error) => {
                drop(transaction);
                return Err(self.team_owns_secrets(name).await);
            }
            Err(error) => return Err(database(OPERATION)(error)),
        };
        if removed.rows_affected() == 0 {
            return Err(group_not_found(kind, name));
        }
        append_change(
            &mut transaction,
            &ChangeKind::GroupChanged,
            &kind.subject(name),
        )
        .await?;
        transaction.commit().await.map_err(database(OPERATION))?;
        self.changes_committed();
        Ok(())
    }

    /// Adds `user` to a group or team and announces [`ChangeKind::MembershipChanged`] for the
    /// user.
    pub async fn add_member(&self, kind: GroupKind, group: &str, user: &str) -> StoreResult<()> {
        const OPERATION: &str = "adding a member";
        let mut transaction = self.begin_write(OPERATION).await?;
        let sql = format!(
            "INSERT INTO {} ({}, user_name, added_at) VALUES ($1, $2, $3)",
            kind.members_table(),
            kind.member_column()
        );
        let inserted = sqlx::query(&sql)
            .bind(group)
            .bind(user)
            .bind(Timestamp::now().as_unix_millis())
            .execute(&mut *transaction)
            .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::AlreadyMember {
                    kind: kind.entity(),
                    group: group.to_owned(),
                    user: user.to_owned(),
                });
            }
            Err(error) if is_foreign_key_violation(&error) => {
                drop(transaction);
                // Name whichever side is missing; the group first, as the likelier typo.
                return Err(match self.group(kind, group).await {
                    Ok(_) => user_not_found(user),
                    Err(error) => error,
                });
            }
            Err(error) => return Err(database(OPERATION)(error)),
        }
        append_change(&mut transaction, &ChangeKind::MembershipChanged, user).await?;
        transaction.commit().await.map_err(database(OPERATION))?;
        self.changes_committed();
        Ok(())
    }

    /// Removes `user` from a group or team and announces [`ChangeKind::MembershipChanged`] for
    /// the user.
    pub async fn remove_member(&self, kind: GroupKind, group: &str, user: &str) -> StoreResult<()> {
        const OPERATION: &str = "removing a member";
        let mut transaction = self.begin_write(OPERATION).await?;
        let sql = format!(
            "DELETE FROM {} WHERE {} = $1 AND user_name = $2",
            kind.members_table(),
            kind.member_column()
        );
        let removed = sqlx::query(&sql)
            .bind(group)
            .bind(user)
            .execute(&mut *transaction)
            .await
            .map_err(database(OPERATION))?;
        if removed.rows_affected() == 0 {
            drop(transaction);
            self.group(kind, group).await?;
            self.user(user).await?;
            return Err(StoreError::NotMember {
                kind: kind.entity(),
                group: group.to_owned(),
                user: user.to_owned(),
            });
        }
        append_change(&mut transaction, &ChangeKind::MembershipChanged, user).await?;
        transaction.commit().await.map_err(database(OPERATION))?;
        self.changes_committed();
        Ok(())
    }

    /// The names of a group's or team's members, sorted.
    pub async fn members(&self, kind: GroupKind, group: &str) -> StoreResult<Vec<String>> {
        self.group(kind, group).await?;
        let sql = format!(
            "SELECT user_name FROM {} WHERE {} = $1 ORDER BY user_name",
            kind.members_table(),
            kind.member_column()
        );
        sqlx::query_scalar(&sql)
            .bind(group)
            .fetch_all(self.pool())
            .await
            .map_err(database("listing members"))
    }

    /// The enabled groups and teams `user` belongs to. Disabled ones are left out: they grant
    /// and own nothing.
    pub async fn memberships(&self, user: &str) -> StoreResult<Memberships> {
        self.user(user).await?;
        let mut memberships = Memberships::default();
        for (kind, names) in [
            (GroupKind::Group, &mut memberships.groups),
            (GroupKind::Team, &mut memberships.teams),
        ] {
            let sql = format!(
                "SELECT g.name FROM {members} m JOIN {groups} g ON g.name = m.{column} \
                 WHERE m.user_name = $1 AND g.disabled_at IS NULL ORDER BY g.name",
                members = kind.members_table(),
                groups = kind.table(),
                column = kind.member_column()
            );
            *names = sqlx::query_scalar(&sql)
                .bind(user)
                .fetch_all(self.pool())
                .await
                .map_err(database("listing memberships"))?;
        }
        Ok(memberships)
    }

    async fn team_owns_secrets(&self, team: &str) -> StoreError {
        let owned = sqlx::query_scalar::<_, String>(
            "SELECT CASE WHEN user_name IS NULL THEN name ELSE name || '@' || user_name END \
             FROM secrets WHERE owner_team = $1 ORDER BY 1",
        )
        .bind(team)
        .fetch_all(self.pool())
        .await;
        match owned {
            Ok(secrets) => StoreError::TeamOwnsSecrets {
                team: team.to_owned(),
                secrets: secrets.join(", "),
            },
            Err(error) => database("listing a team's secrets")(error),
        }
    }
}

fn group_not_found(kind: GroupKind, name: &str) -> StoreError {
    StoreError::NotFound {
        kind: kind.entity(),
        name: name.to_owned(),
    }
}

fn group_from_row(kind: GroupKind, row: &AnyRow) -> Result<Group, sqlx::Error> {
    Ok(Group {
        kind,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        disabled_at: row
            .try_get::<Option<i64>, _>("disabled_at")?
            .map(Timestamp::from_unix_millis),
    })
}
