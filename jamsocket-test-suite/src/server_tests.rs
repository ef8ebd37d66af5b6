/// Instantiates the suite for the rooms `$factory` makes (an expression whose type implements
/// [`ConformanceFactory`](crate::ConformanceFactory), evaluated in the invoking module once per
/// test).
///
/// Expands, where it is invoked, to one module per area (`admin`, `attacks`, `chaos`, `identity`,
/// `lifecycle`, `limits`, `messaging`, `protocol`, `strategies`), each holding one test per test body of
/// that area with the runtime the body needs: `#[tokio::test]`, or a two-worker multi-thread
/// runtime for the tests that open thousands of connections. So the invoking crate needs
/// `tokio` with its `macros` and `rt-multi-thread` features, and no modules of those names.
///
/// ```
/// use conformance_service::ConformanceService;
///
/// fn factory() -> jamsocket::SimpleJamsocketServiceFactory<ConformanceService> {
///     Default::default()
/// }
///
/// jamsocket_test_suite::server_tests!(factory());
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! server_tests {
    ($factory:expr) => {
        /// The rooms the suite's tests run against.
        fn server_tests_factory() -> impl $crate::ConformanceFactory {
            $factory
        }

        $crate::__server_tests_area! { admin:
            #[tokio::test]
            the_room_api_lists_rooms_in_pages_and_describes_each_with_its_clients;
            #[tokio::test]
            the_room_api_refuses_requests_without_the_token_or_with_bad_values;
            #[tokio::test]
            a_backend_request_reaches_the_service_and_its_answer_comes_back;
            #[tokio::test]
            delete_closes_a_rooms_clients_with_the_code_and_reason_given;
        }

        $crate::__server_tests_area! { attacks:
            #[tokio::test]
            frames_announcing_more_than_the_limit_are_closed_with_1009_after_their_header;
            #[tokio::test]
            a_message_that_never_finishes_is_closed_with_1008_at_its_deadline;
            #[tokio::test]
            a_flood_of_pings_or_empty_continuations_is_closed_with_1008_within_a_second;
            #[tokio::test]
            connections_over_the_server_limit_get_503_until_one_leaves;
            #[tokio::test]
            connections_over_the_per_address_limit_get_429_counting_forwarded_addresses_from_trusted_proxies_only;
            #[tokio::test]
            the_listen_backlog_holds_a_thousand_connections;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            connect_and_drop_to_new_rooms_cannot_keep_another_client_out;
            #[tokio::test]
            room_creation_per_address_is_rate_limited_with_429;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            handshakes_after_shutdown_began_get_503_or_a_close_frame;
            #[tokio::test]
            partly_received_messages_share_a_server_wide_budget_and_the_excess_gets_1013;
        }

        $crate::__server_tests_area! { chaos:
            #[tokio::test]
            a_connection_reset_in_the_middle_of_a_frame_leaves_once_and_the_room_carries_on;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            a_storm_on_one_room_is_served_up_to_its_limit_and_refused_cleanly_beyond;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            a_storm_on_many_rooms_creates_them_all;
        }

        $crate::__server_tests_area! { lifecycle:
            #[tokio::test]
            immediate_policy_forgets_an_empty_room;
            #[tokio::test]
            never_policy_keeps_an_empty_room;
            #[tokio::test]
            grace_period_keeps_state_for_clients_that_return_in_time;
            #[tokio::test]
            silent_clients_are_dropped_after_the_heartbeat_timeout;
            #[tokio::test]
            stopping_the_server_closes_every_client_with_1001;
            #[tokio::test]
            close_rooms_closes_clients_with_the_code_and_keeps_serving;
            #[tokio::test]
            close_room_closes_one_room_and_leaves_the_others;
        }

        $crate::__server_tests_area! { limits:
            #[tokio::test]
            messages_over_the_size_limit_close_with_1009;
            #[tokio::test]
            invalid_utf8_text_closes_with_1007;
            #[tokio::test]
            clients_over_the_message_rate_are_closed_with_1008;
            #[tokio::test]
            full_rooms_refuse_with_503;
            #[tokio::test]
            the_room_limit_refuses_new_rooms_with_503;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            a_client_that_reads_late_gets_everything_in_order;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            a_client_that_stops_reading_is_closed_and_the_rest_get_everything_in_order;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            fifty_clients_that_never_read_are_dropped_while_fifty_that_read_get_everything_in_order;
        }

        $crate::__server_tests_area! { messaging:
            #[tokio::test]
            status_says_ok;
            #[tokio::test]
            client_ids_start_at_one_and_are_never_reused;
            #[tokio::test]
            broadcast_reaches_everyone_and_direct_reaches_one;
            #[tokio::test]
            rooms_are_isolated;
            #[tokio::test]
            binary_frames_round_trip;
            #[tokio::test]
            timers_fire_and_a_new_timer_replaces_the_pending_one;
            #[tokio::test]
            disconnect_is_delivered_for_close_frames_and_dropped_sockets;
            #[tokio::test]
            back_to_back_frames_are_not_held_back_by_delayed_acks;
            #[tokio::test]
            a_panicking_room_closes_with_1011_and_leaves_other_rooms_alone;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            two_thousand_connections_across_two_hundred_rooms;
        }

        $crate::__server_tests_area! { protocol:
            #[tokio::test]
            fragmented_messages_arrive_whole;
            #[tokio::test]
            fragments_adding_up_to_more_than_the_limit_close_with_1009;
            #[tokio::test]
            pings_get_pongs_with_the_same_payload;
            #[tokio::test]
            a_client_close_is_answered_with_its_code;
            #[tokio::test]
            frames_sent_along_with_the_handshake_are_not_lost;
            #[tokio::test]
            upgrade_requests_that_cannot_be_served_get_an_http_error_that_says_why;
            #[tokio::test]
            other_upgrades_are_answered_as_plain_requests;
            #[tokio::test]
            a_message_followed_at_once_by_a_bad_frame_still_gets_its_reply_before_the_close;
        }

        $crate::__server_tests_area! { identity:
            #[tokio::test]
            tokens_are_checked_before_the_upgrade_with_a_reason_for_each_refusal;
            #[tokio::test]
            an_admission_hook_admits_as_a_user_or_refuses_with_its_status_and_body;
            #[tokio::test]
            a_client_back_within_the_grace_keeps_its_id_and_the_service_sees_no_departure;
            #[tokio::test]
            a_session_ends_when_the_grace_passes_and_a_key_cannot_be_used_by_another_user;
            #[tokio::test]
            a_key_presented_by_a_second_connection_takes_the_session_over_and_closes_the_first_with_4000;
            #[tokio::test]
            jamsocket_v1_resumes_a_lost_connection_without_losing_or_repeating_a_message;
            #[tokio::test]
            a_jamsocket_v1_client_gets_a_queue_of_unacknowledged_messages_and_more_once_it_acknowledges;
            #[tokio::test]
            messages_sent_while_a_plain_client_is_away_arrive_in_order_when_it_returns;
            #[tokio::test]
            clients_away_count_against_the_connection_limits_until_their_grace_ends;
            #[tokio::test]
            an_acknowledgement_queued_for_a_lost_connection_never_reaches_the_next;
            #[tokio::test]
            a_queued_acknowledgement_stays_unsent_after_a_resume_that_waits_for_the_client;
            #[tokio::test]
            pages_of_allowed_origins_can_read_why_a_handshake_was_refused;
        }

        $crate::__server_tests_area! { strategies:
            #[tokio::test]
            implicit_rooms_are_created_by_connecting;
            #[tokio::test]
            api_rooms_must_be_created_before_connecting;
            #[tokio::test]
            generated_rooms_come_from_post_new_room;
            #[tokio::test]
            bad_room_ids_get_400;
        }
    };
}

/// One area's module of [`server_tests!`]: each test calls its body with the invoking module's
/// `server_tests_factory()`.
#[doc(hidden)]
#[macro_export]
macro_rules! __server_tests_area {
    ($area:ident: $(#[$runtime:meta] $test:ident;)*) => {
        mod $area {
            $(
                #[$runtime]
                async fn $test() {
                    $crate::$area::$test(super::server_tests_factory()).await
                }
            )*
        }
    };
}

/// Instantiates the durable-room tests ([`durable`](crate::durable)) for the rooms `$factory`
/// makes, which must keep snapshots (WebAssembly rooms, or a native `Durable<S>`). Expands to a
/// module `durable`; the invoking crate needs `tokio` with `macros` and `rt-multi-thread`.
#[macro_export]
macro_rules! durable_tests {
    ($factory:expr) => {
        mod durable {
            fn factory() -> impl $crate::ConformanceFactory {
                $factory
            }

            $crate::__durable_tests! {
                a_room_survives_a_restart_with_sqlite;
                a_room_survives_a_restart_with_redis;
                a_pending_timer_fires_after_a_restore;
                idle_rooms_hibernate_and_come_back_on_connect;
                a_corrupt_snapshot_is_kept_aside_and_the_room_starts_fresh;
                an_oversized_snapshot_is_refused_and_the_room_keeps_serving;
                redis_going_away_stops_nothing_and_pending_snapshots_are_written_when_it_returns;
                a_session_resumes_across_a_restart;
                messages_on_their_way_to_an_away_client_survive_a_restart;
                the_room_api_reports_hibernated_rooms_and_forgets_them_on_delete;
                the_room_api_lists_hibernated_rooms_apart_from_live_ones;
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __durable_tests {
    ($($test:ident;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                $crate::durable::$test(factory()).await
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    /// Every `pub async fn` of an area is a test body; one left out of [`server_tests!`] would
    /// silently run nowhere.
    #[test]
    fn every_test_body_is_instantiated() {
        let listed = include_str!("server_tests.rs");
        for (area, source) in [
            ("attacks", include_str!("attacks.rs")),
            ("chaos", include_str!("chaos.rs")),
            ("identity", include_str!("identity.rs")),
            ("lifecycle", include_str!("lifecycle.rs")),
            ("limits", include_str!("limits.rs")),
            ("messaging", include_str!("messaging.rs")),
            ("protocol", include_str!("protocol.rs")),
            ("strategies", include_str!("strategies.rs")),
            ("durable", include_str!("durable.rs")),
        ] {
            for line in source.lines() {
                if let Some(signature) = line.strip_prefix("pub async fn ") {
                    let name = signature.split('(').next().unwrap();
                    assert!(
                        listed.contains(&format!(" {name};")),
                        "{area}::{name} is missing from server_tests!"
                    );
                }
            }
        }
    }
}
