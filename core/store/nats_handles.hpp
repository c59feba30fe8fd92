#pragma once
// One RAII owner per cnats handle (nats.h), for the JetStream log and the tools that measure it.
#include <nats/nats.h>

#include <memory>

namespace evstream::nats_handles {

struct OptionsDeleter {
  void operator()(natsOptions* p) const { natsOptions_Destroy(p); }
};
struct ConnectionDeleter {
  void operator()(natsConnection* p) const { natsConnection_Destroy(p); }
};
struct ContextDeleter {
  void operator()(jsCtx* p) const { jsCtx_Destroy(p); }
};
struct SubscriptionDeleter {
  void operator()(natsSubscription* p) const { natsSubscription_Destroy(p); }
};
struct MsgDeleter {
  void operator()(natsMsg* p) const { natsMsg_Destroy(p); }
};
struct StreamInfoDeleter {
  void operator()(jsStreamInfo* p) const { jsStreamInfo_Destroy(p); }
};
struct MetaDeleter {
  void operator()(jsMsgMetaData* p) const { jsMsgMetaData_Destroy(p); }
};

using OptionsPtr = std::unique_ptr<natsOptions, OptionsDeleter>;
using ConnectionPtr = std::unique_ptr<natsConnection, ConnectionDeleter>;
using ContextPtr = std::unique_ptr<jsCtx, ContextDeleter>;
using SubscriptionPtr = std::unique_ptr<natsSubscription, SubscriptionDeleter>;
using MsgPtr = std::unique_ptr<natsMsg, MsgDeleter>;
using StreamInfoPtr = std::unique_ptr<jsStreamInfo, StreamInfoDeleter>;
using MetaPtr = std::unique_ptr<jsMsgMetaData, MetaDeleter>;

}  // namespace evstream::nats_handles
