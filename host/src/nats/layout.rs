//! The connection, and the streams, consumer and buckets both sides use (see the module docs of
//! [`super`]), created by whichever side comes first.

use async_nats::jetstream::{self, consumer, object_store, stream};

use super::{ACK_WAIT, DUPLICATE_WINDOW, EVENTS_MAX_AGE, NatsError, NatsOptions, redact};

/// The work-queue stream of tasks.
pub const TASKS_STREAM: &str = "SANDMAP_TASKS";
/// The stream of what workers tell.
pub const EVENTS_STREAM: &str = "SANDMAP_EVENTS";
/// The one durable consumer every worker pulls tasks from.
pub const WORKERS_CONSUMER: &str = "sandmap-workers";
/// Components, by sha256.
pub const COMPONENTS_BUCKET: &str = "sandmap_components";
/// Messages too large to travel inline, by sha256.
pub const BLOBS_BUCKET: &str = "sandmap_blobs";

/// A connection to the server with sandmap's streams and buckets.
#[derive(Clone)]
pub struct Bus {
    /// The core connection.
    pub client: async_nats::Client,
    /// Its JetStream context.
    pub js: jetstream::Context,
    /// `SANDMAP_TASKS`.
    pub tasks: stream::Stream,
    /// `SANDMAP_EVENTS`.
    pub events: stream::Stream,
    /// `sandmap_components`.
    pub components: object_store::ObjectStore,
    /// `sandmap_blobs`.
    pub blobs: object_store::ObjectStore,
}

impl Bus {
    /// Connect and make sure the streams and buckets exist.
    pub async fn connect(options: &NatsOptions) -> Result<Self, NatsError> {
        let url = redact(&options.url);
        let mut connect =
            async_nats::ConnectOptions::new().name(&options.name).connection_timeout(std::time::Duration::from_secs(5));
        if let Some(path) = &options.creds {
            connect = connect
                .credentials_file(path)
                .await
                .map_err(|e| NatsError::Creds { path: path.clone(), reason: e.to_string() })?;
        }
        // The client takes credentials from its options only, never from the URL.
        let (servers, login) = split_login(&options.url);
        connect = match login {
            Some(Login::UserPassword(user, password)) => connect.user_and_password(user, password),
            Some(Login::Token(token)) => connect.token(token),
            None => connect,
        };
        let client = connect
            .connect(servers.as_str())
            .await
            .map_err(|e| NatsError::Connect { url: url.clone(), reason: connect_reason(&e) })?;
        let js = jetstream::new(client.clone());
        let tasks = js
            .get_or_create_stream(stream::Config {
                name: TASKS_STREAM.into(),
                subjects: vec!["sandmap.tasks.>".into()],
                retention: stream::RetentionPolicy::WorkQueue,
                duplicate_window: DUPLICATE_WINDOW,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| jetstream_reason(&url, format!("cannot open stream {TASKS_STREAM}"), e))?;
        let events = js
            .get_or_create_stream(stream::Config {
                name: EVENTS_STREAM.into(),
                subjects: vec!["sandmap.events.>".into()],
                retention: stream::RetentionPolicy::Limits,
                duplicate_window: std::time::Duration::from_secs(120),
                max_age: EVENTS_MAX_AGE,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| jetstream_reason(&url, format!("cannot open stream {EVENTS_STREAM}"), e))?;
        let components = bucket(&js, COMPONENTS_BUCKET, std::time::Duration::ZERO).await?;
        // Blobs are read back by a redelivery, so they stay a while; nothing reads them after.
        let blobs = bucket(&js, BLOBS_BUCKET, EVENTS_MAX_AGE).await?;
        Ok(Self { client, js, tasks, events, components, blobs })
    }

    /// Publish one message and wait until the server has stored it, sending it again (under its
    /// message id `id`, so that it is stored once) while that fails, for up to `patience`.
    /// `what` names it in the warnings.
    pub async fn publish_until_stored(
        &self,
        subject: String,
        id: &str,
        payload: bytes::Bytes,
        headers: async_nats::HeaderMap,
        patience: std::time::Duration,
        what: &str,
    ) -> Result<(), String> {
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(50);
        loop {
            let message = async_nats::jetstream::message::PublishMessage::build()
                .payload(payload.clone())
                .headers(headers.clone())
                .message_id(id);
            let stored = match self.js.send_publish(subject.clone(), message).await {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            };
            match stored {
                Ok(()) => return Ok(()),
                Err(error) if started.elapsed() < patience => {
                    tracing::warn!("{what} was not stored ({error}); sending it again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(2));
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The consumer workers pull tasks from.
    pub async fn workers_consumer(&self) -> Result<consumer::PullConsumer, NatsError> {
        self.tasks
            .get_or_create_consumer(
                WORKERS_CONSUMER,
                consumer::pull::Config {
                    durable_name: Some(WORKERS_CONSUMER.into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    // Unlimited here: a message that reaches the server's `max_deliver` stays in a
                    // work-queue stream as a dead letter (nats-server #5564). Workers count lost
                    // deliveries themselves and fail the attempt instead (`MAX_LOST_DELIVERIES`).
                    max_deliver: -1,
                    filter_subject: "sandmap.tasks.>".into(),
                    max_ack_pending: 100_000,
                    // No `inactive_threshold`: durable consumers with one vanish (nats.go #1621).
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| NatsError::js(format!("cannot open consumer {WORKERS_CONSUMER}"), e))
    }
}

/// What a URL's `user:password@` or `token@` says.
#[derive(Debug, PartialEq, Eq)]
enum Login {
    UserPassword(String, String),
    Token(String),
}

/// The server list without credentials, and the first credentials found in it.
fn split_login(urls: &str) -> (String, Option<Login>) {
    let mut login = None;
    let servers: Vec<String> = urls
        .split(',')
        .map(|one| match super::split_userinfo(one) {
            (scheme, Some(userinfo), host) => {
                if login.is_none() {
                    login = Some(match userinfo.split_once(':') {
                        Some((user, password)) => Login::UserPassword(user.to_owned(), password.to_owned()),
                        None => Login::Token(userinfo.to_owned()),
                    });
                }
                format!("{scheme}{host}")
            }
            (_, None, _) => one.to_owned(),
        })
        .collect();
    (servers.join(","), login)
}

async fn bucket(
    js: &jetstream::Context,
    name: &str,
    max_age: std::time::Duration,
) -> Result<object_store::ObjectStore, NatsError> {
    if let Ok(store) = js.get_object_store(name).await {
        return Ok(store);
    }
    let config = object_store::Config { bucket: name.into(), max_age, ..Default::default() };
    match js.create_object_store(config).await {
        Ok(store) => Ok(store),
        // Another process created it meanwhile.
        Err(error) => {
            js.get_object_store(name).await.map_err(|_| NatsError::js(format!("cannot open bucket {name}"), error))
        }
    }
}

fn connect_reason(error: &async_nats::ConnectError) -> String {
    use async_nats::ConnectErrorKind as Kind;
    match error.kind() {
        Kind::AuthorizationViolation => {
            "authorization violation: the server refused these credentials (check the URL's user:password, the \
             token or --nats-creds)"
                .into()
        }
        _ => error.to_string(),
    }
}

fn jetstream_reason(url: &str, what: String, error: impl std::fmt::Display) -> NatsError {
    let reason = error.to_string();
    let reason = if reason.contains("not enabled") || reason.contains("no responders") {
        format!("{reason} (is JetStream enabled on {url}? start the server with `nats-server -js`)")
    } else {
        reason
    };
    NatsError::JetStream { what, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_out_of_the_url() {
        assert_eq!(
            split_login("nats://u:p@h:1"),
            ("nats://h:1".to_owned(), Some(Login::UserPassword("u".into(), "p".into())))
        );
        assert_eq!(split_login("nats://tok@h"), ("nats://h".to_owned(), Some(Login::Token("tok".into()))));
        assert_eq!(
            split_login("nats://h:1,nats://a:b@g"),
            ("nats://h:1,nats://g".to_owned(), Some(Login::UserPassword("a".into(), "b".into())))
        );
        assert_eq!(split_login("nats://h"), ("nats://h".to_owned(), None));
    }
}
