// The OpenAPI 3.1 document served at /api/openapi.json. Kept as JSON text so it reads like the
// document it is; the unit tests parse it and check every route of http.cpp is described.
// The WebSocket endpoints are described as GET upgrades with their message schemas in components
// (OpenAPI has no WebSocket object; x-websocket-messages names which schema goes which way).
#include "core/server/api.hpp"

namespace evstream {

namespace {

constexpr std::string_view kOpenApi = R"json({
  "openapi": "3.1.0",
  "info": {
    "title": "evstream",
    "version": ")json" EVSTREAM_VERSION R"json(",
    "description": "Persist JSON events and broadcast them to WebSocket subscribers. Every event is stored before anyone sees it; ids are strictly increasing and are the resume cursor. When the server runs with --token, publishing needs it; with --read-token, reading needs that token (or the publish token). Send tokens as 'Authorization: Bearer TOKEN' or '?token=TOKEN'."
  },
  "servers": [{"url": "/"}],
  "security": [{}, {"bearer": []}, {"queryToken": []}],
  "paths": {
    "/api/events": {
      "get": {
        "summary": "Page through stored events",
        "description": "Id bounds are exclusive, time bounds inclusive. Follow 'next' until it is null to visit every matching event exactly once.",
        "parameters": [
          {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}, "description": "Only ids greater than this."},
          {"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 0}, "description": "Only ids less than this."},
          {"name": "since", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 time, or a duration ago (30s, 5m, 1h, 7d). Inclusive."},
          {"name": "until", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 time, or a duration ago. Inclusive."},
          {"name": "topic", "in": "query", "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Topic"}}, "style": "form", "explode": true, "description": "Repeatable; default all topics."},
          {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "description": "Larger values are capped at 1000."},
          {"name": "order", "in": "query", "schema": {"type": "string", "enum": ["asc", "desc"], "default": "desc"}},
          {"name": "where", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": true, "description": "Field filter over data (PATH OP VALUE, PATH in V1,V2, exists PATH; OP = != < <= > >= ~); repeatable, all must hold. A filtered page examines the store for about 10 ms at most: it can hold fewer than limit events, even none, while next is not null."}
        ],
        "responses": {
          "200": {"description": "One page", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventPage"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthorized"}
        }
      },
      "post": {
        "summary": "Publish events",
        "description": "A JSON object (the event data, or an envelope {\"type\":\"event\",\"data\":{...},\"topic\":\"t\",\"key\":\"k\"}), or with Content-Type application/x-ndjson one such object per line, all or nothing (at most 10000 events, 16 x --max-message-bytes). Answers once every event is durably stored; subscribers receive them like events published over /ws/publish.",
        "parameters": [
          {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 256}, "description": "Key for an event without its own key (NDJSON: KEY:LINE per line). A known key stores nothing and answers the first event's id."}
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PublishFrame"}},
            "application/x-ndjson": {"schema": {"type": "string", "description": "One PublishFrame per line."}}
          }
        },
        "responses": {
          "201": {"description": "Stored", "content": {"application/json": {"schema": {"oneOf": [
            {"type": "object", "required": ["id"], "properties": {"id": {"$ref": "#/components/schemas/EventId"}, "duplicate": {"type": "boolean"}}},
            {"type": "object", "required": ["ids"], "properties": {"ids": {"type": "array", "items": {"$ref": "#/components/schemas/EventId"}}, "duplicates": {"type": "integer"}}}
          ]}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "411": {"description": "No Content-Length, or Transfer-Encoding (not supported); the connection is closed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "413": {"description": "Body too large", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "503": {"description": "Shutting down or the store queue is full; retry", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    },
    "/api/events/stream": {
      "get": {
        "summary": "Subscribe over plain HTTP: Server-Sent Events or NDJSON",
        "description": "The messages of /ws/events (greeting ping, events in id order, pings, errors), with its parameters, queue bounds and slow-consumer policy. SSE (Accept: text/event-stream or format=sse): each event has id: = its id; Last-Event-ID resumes after it and wins over since/last; later pings are ': ping' comments. NDJSON otherwise: one message per line. The response has no length; a slow reader's stream ends with an error line (SSE: a comment), after which it resumes with since=.",
        "parameters": [
          {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["sse", "ndjson"]}},
          {"name": "topic", "in": "query", "schema": {"type": "string"}, "description": "Repeatable; default every topic"},
          {"name": "since", "in": "query", "schema": {"$ref": "#/components/schemas/EventId"}, "description": "Every stored event after this id, then live"},
          {"name": "since_time", "in": "query", "schema": {"type": "string", "format": "date-time"}},
          {"name": "last", "in": "query", "schema": {"type": "integer", "minimum": 0}, "description": "The last N stored events, then live"},
          {"name": "where", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": true, "description": "Field filter over data (PATH OP VALUE, PATH in V1,V2, exists PATH; OP = != < <= > >= ~); repeatable, all must hold"},
          {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}, "description": "SSE reconnect: resume after this id"}
        ],
        "responses": {
          "200": {"description": "The stream", "content": {"text/event-stream": {}, "application/x-ndjson": {}}},
          "400": {"description": "A bad parameter, named", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "503": {"description": "Shutting down, or --max-clients reached", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    },
    "/api/events/{id}": {
      "get": {
        "summary": "One stored event",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/EventId"}}],
        "responses": {
          "200": {"description": "The record", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Record"}}}},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"description": "No such event", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    },
    "/api/health": {
      "get": {
        "summary": "Liveness and figures",
        "description": "Always answers. With --read-token set and no valid token, only status, version and uptime_s.",
        "security": [{}],
        "responses": {"200": {"description": "Healthy", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}}
      }
    },
    "/api/openapi.json": {
      "get": {"summary": "This document", "security": [{}], "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}}}
    },
    "/metrics": {
      "get": {
        "summary": "Prometheus metrics",
        "responses": {"200": {"description": "Text exposition format 0.0.4", "content": {"text/plain": {}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}
      }
    },
    "/": {
      "get": {"summary": "The live dashboard page", "security": [{}], "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}}
    },
    "/ws/events": {
      "get": {
        "summary": "WebSocket: subscribe",
        "description": "Upgrade to a WebSocket. The first message is a Ping with connection_id and last_id; then stored events (since=/last=), then live events in id order, with no gap and no duplicate. Answer every Ping with a Pong: a client silent for 2 ping intervals is closed. A slow consumer is closed with 1008 'slow consumer' and can resume with since=.",
        "parameters": [
          {"name": "topic", "in": "query", "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Topic"}}, "style": "form", "explode": true},
          {"name": "since", "in": "query", "schema": {"$ref": "#/components/schemas/EventId"}, "description": "Send every stored event with a greater id first."},
          {"name": "last", "in": "query", "schema": {"type": "integer", "minimum": 0}, "description": "Send the last N stored events first."},
          {"name": "where", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": true, "description": "Field filter over data (PATH OP VALUE, PATH in V1,V2, exists PATH; OP = != < <= > >= ~); repeatable, all must hold. since= and last= count matching events only."}
        ],
        "x-websocket-messages": {
          "server-to-client": [{"$ref": "#/components/schemas/Ping"}, {"$ref": "#/components/schemas/EventMessage"}, {"$ref": "#/components/schemas/ErrorMessage"}],
          "client-to-server": [{"$ref": "#/components/schemas/Pong"}]
        },
        "responses": {
          "101": {"description": "Switching protocols"},
          "401": {"description": "Missing or wrong read token"},
          "403": {"description": "Origin not allowed"},
          "503": {"description": "Shutting down or --max-clients reached"}
        }
      }
    },
    "/ws/publish": {
      "get": {
        "summary": "WebSocket: publish",
        "description": "Upgrade to a WebSocket. Each text frame is one PublishFrame; each gets exactly one reply in order: an Ack once stored, or an ErrorMessage (nothing stored, connection stays open).",
        "x-websocket-messages": {
          "client-to-server": [{"$ref": "#/components/schemas/PublishFrame"}],
          "server-to-client": [{"$ref": "#/components/schemas/Ack"}, {"$ref": "#/components/schemas/ErrorMessage"}]
        },
        "responses": {
          "101": {"description": "Switching protocols"},
          "401": {"description": "Missing or wrong publish token"},
          "403": {"description": "Origin not allowed"},
          "503": {"description": "Shutting down or --max-clients reached"}
        }
      }
    }
  },
  "components": {
    "securitySchemes": {
      "bearer": {"type": "http", "scheme": "bearer"},
      "queryToken": {"type": "apiKey", "in": "query", "name": "token"}
    },
    "responses": {
      "BadRequest": {"description": "Bad input; the message names it", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unauthorized": {"description": "Missing or wrong token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    },
    "schemas": {
      "EventId": {"type": "integer", "format": "int64", "minimum": 1},
      "Topic": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$", "default": "events"},
      "Time": {"type": "string", "format": "date-time", "description": "RFC 3339 UTC with microseconds"},
      "Record": {
        "type": "object",
        "required": ["id", "topic", "time", "data"],
        "properties": {"id": {"$ref": "#/components/schemas/EventId"}, "topic": {"$ref": "#/components/schemas/Topic"}, "time": {"$ref": "#/components/schemas/Time"}, "data": {"type": "object", "description": "The published object; numbers keep their digits."}}
      },
      "EventPage": {
        "type": "object",
        "required": ["events", "next"],
        "properties": {"events": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}}, "next": {"type": ["string", "null"], "description": "Relative URL of the next page (same filters); null when nothing follows. Tokens are not included."}}
      },
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
      "Health": {
        "type": "object",
        "required": ["status", "version", "uptime_s"],
        "properties": {
          "status": {"const": "ok"}, "version": {"type": "string"}, "uptime_s": {"type": "integer"},
          "subscribers": {"type": "integer"}, "publishers": {"type": "integer"}, "events_total": {"type": "integer"},
          "last_event_id": {"type": "integer"}, "rss_bytes": {"type": "integer"},
          "threads": {"type": "array", "description": "Per service thread (serve --threads): its open connections; the totals above are their sums", "items": {"type": "object", "properties": {"subscribers": {"type": "integer"}, "publishers": {"type": "integer"}}}},
          "db": {"type": "object", "properties": {"path": {"type": "string"}, "bytes": {"type": "integer"}, "durability": {"enum": ["normal", "full"]}, "queue_depth": {"type": "integer"}}}
        }
      },
      "Ping": {
        "type": "object",
        "required": ["type", "timestamp"],
        "properties": {"type": {"const": "ping"}, "timestamp": {"$ref": "#/components/schemas/Time"}, "connection_id": {"type": "string", "description": "First message only"}, "last_id": {"type": "integer", "description": "First message only: newest stored id at connect time"}}
      },
      "Pong": {"type": "object", "required": ["type"], "properties": {"type": {"const": "pong"}, "timestamp": {"$ref": "#/components/schemas/Time"}}},
      "EventMessage": {
        "type": "object",
        "required": ["type", "id", "topic", "time", "data"],
        "properties": {"type": {"const": "event"}, "id": {"$ref": "#/components/schemas/EventId"}, "topic": {"$ref": "#/components/schemas/Topic"}, "time": {"$ref": "#/components/schemas/Time"}, "data": {"type": "object"}}
      },
      "ErrorMessage": {"type": "object", "required": ["type", "message"], "properties": {"type": {"const": "error"}, "message": {"type": "string"}}},
      "Ack": {"type": "object", "required": ["type", "id"], "properties": {"type": {"const": "ack"}, "id": {"$ref": "#/components/schemas/EventId"}, "duplicate": {"type": "boolean"}}},
      "PublishFrame": {
        "description": "An envelope, or a bare object taken as the data.",
        "oneOf": [
          {"type": "object", "required": ["type", "data"], "additionalProperties": false, "properties": {"type": {"const": "event"}, "data": {"type": "object"}, "topic": {"$ref": "#/components/schemas/Topic"}, "key": {"type": "string", "minLength": 1, "maxLength": 256}}},
          {"type": "object"}
        ]
      }
    }
  }
})json";

}  // namespace

std::string_view openapi_json() {
  return kOpenApi;
}

}  // namespace evstream
