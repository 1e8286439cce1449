#include "cluster/group_publisher.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <utility>

#include "cluster/record_codec.h"

namespace loanledger::cluster {
namespace {

// 128 random bits in hex.
std::string RandomHex() {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 4; ++i) {
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
    out += buf;
  }
  return out;
}

}  // namespace

std::string NatsError(natsStatus s, jsErrCode jerr) {
  std::string m = natsStatus_GetText(s);
  if (const char* last = nats_GetLastError(nullptr); last != nullptr && *last != '\0') {
    m += " (";
    m += last;
    m += ")";
  }
  if (jerr != 0) m += " [JetStream error " + std::to_string(static_cast<int>(jerr)) + "]";
  return m;
}

GroupPublisher::GroupPublisher(std::string subject)
    : subject_(std::move(subject)), nonce_(RandomHex()) {}

GroupPublisher::~GroupPublisher() { js_.reset(); }

Result<std::unique_ptr<GroupPublisher>> GroupPublisher::Create(natsConnection* nc,
                                                               std::string subject) {
  std::unique_ptr<GroupPublisher> p(new GroupPublisher(std::move(subject)));
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 5000;
  jo.PublishAsync.AckHandler = &GroupPublisher::OnAck;
  jo.PublishAsync.AckHandlerClosure = p.get();
  jo.PublishAsync.MaxPending = 4096;
  jsCtx* js = nullptr;
  const natsStatus s = natsConnection_JetStream(&js, nc, &jo);
  if (s != NATS_OK) return Status::Unavailable("JetStream context: " + NatsError(s));
  p->js_.reset(js);
  return p;
}

// Sends the records (ids prefix + index); returns how many went out.
size_t GroupPublisher::Send(std::span<const std::string> records, uint64_t expected,
                            const std::string& prefix, natsStatus* error) {
  size_t sent = 0;
  for (; sent < records.size(); ++sent) {
    natsMsg* m = nullptr;
    bool compressed = false;
    const std::string body = EncodeRecord(records[sent], &compressed);
    const std::string id = prefix + std::to_string(sent);
    natsStatus s =
        natsMsg_Create(&m, subject_.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
    if (s == NATS_OK && compressed) s = natsMsgHeader_Set(m, kEncodingHeader, kZstdEncoding);
    if (s == NATS_OK) s = natsMsgHeader_Set(m, "Nats-Msg-Id", id.c_str());
    if (s == NATS_OK) {
      s = natsMsgHeader_Set(m, "Nats-Expected-Last-Sequence",
                            std::to_string(expected + sent).c_str());
    }
    if (s == NATS_OK && sent > 0) {
      const std::string previous = prefix + std::to_string(sent - 1);
      s = natsMsgHeader_Set(m, "Nats-Expected-Last-Msg-Id", previous.c_str());
    }
    if (s == NATS_OK) s = js_PublishMsgAsync(js_.get(), &m, nullptr);
    if (m != nullptr) natsMsg_Destroy(m);  // not taken by the library
    if (s != NATS_OK) {
      *error = s;
      break;
    }
  }
  return sent;
}

GroupPublisher::Outcome GroupPublisher::Publish(std::span<const std::string> records,
                                                uint64_t expected) {
  uint64_t group;
  {
    std::lock_guard lock(mu_);
    group = ++group_;
    results_.assign(records.size(), Result1{});
    done_ = 0;
  }
  natsStatus send_error = NATS_OK;
  const size_t sent =
      Send(records, expected, nonce_ + "." + std::to_string(group) + ".", &send_error);
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 5000;
  const natsStatus waited = sent > 0 ? js_PublishAsyncComplete(js_.get(), &po) : NATS_OK;
  std::vector<Result1> results;
  {
    std::unique_lock lock(mu_);
    if (waited == NATS_OK) {
      // The library may count an ack as done just before its handler ran.
      cv_.wait_for(lock, std::chrono::seconds(2), [&] { return done_ >= sent; });
    }
    results = results_;
    ++group_;  // acks still to come belong to no group
  }
  if (waited != NATS_OK) {
    natsMsgList pending;
    if (js_PublishAsyncGetPendingList(&pending, js_.get()) == NATS_OK)
      natsMsgList_Destroy(&pending);
  }
  Outcome out;
  out.last = expected;
  for (size_t i = 0; i < sent; ++i, ++out.stored) {
    const Result1& r = results[i];
    if (r.done && r.status == NATS_OK && r.seq == expected + i + 1) {
      out.last = r.seq;
      continue;
    }
    out.fenced =
        r.done && (r.error == JSStreamWrongLastSequenceErr || r.error == JSStreamWrongLastMsgIDErr);
    out.not_delivered = i == 0 && r.done && r.status == NATS_NO_RESPONDERS;
    out.why = !r.done               ? "no ack within 5 s (" + NatsError(waited) + ")"
              : r.status != NATS_OK ? r.text + " " + NatsError(r.status, r.error)
                                    : "stored at " + std::to_string(r.seq) + " instead of " +
                                          std::to_string(expected + i + 1);
    return out;
  }
  if (send_error != NATS_OK) out.why = NatsError(send_error);
  return out;
}

// libnats's thread: one ack (or error) of Publish's records.
void GroupPublisher::OnAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  auto* self = static_cast<GroupPublisher*>(closure);
  const char* id = nullptr;
  if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id != nullptr) {
    self->NoteAck(id, pa, pae);
  }
  natsMsg_Destroy(msg);
}

void GroupPublisher::NoteAck(std::string_view id, const jsPubAck* pa, const jsPubAckErr* pae) {
  // id = nonce.group.index
  const size_t dot2 = id.rfind('.');
  const size_t dot1 = dot2 == std::string_view::npos ? dot2 : id.rfind('.', dot2 - 1);
  if (dot1 == std::string_view::npos || id.substr(0, dot1) != nonce_) return;
  const uint64_t group =
      std::strtoull(std::string(id.substr(dot1 + 1, dot2 - dot1 - 1)).c_str(), nullptr, 10);
  const size_t index = std::strtoull(std::string(id.substr(dot2 + 1)).c_str(), nullptr, 10);
  std::lock_guard lock(mu_);
  if (group != group_ || index >= results_.size() || results_[index].done) return;
  Result1& r = results_[index];
  r.done = true;
  if (pa != nullptr) {
    r.seq = pa->Sequence;
  } else if (pae != nullptr) {
    r.status = pae->Err != NATS_OK ? pae->Err : NATS_ERR;
    r.error = pae->ErrCode;
    r.text = pae->ErrText != nullptr ? pae->ErrText : "";
  } else {
    r.status = NATS_ERR;
  }
  ++done_;
  cv_.notify_all();
}

}  // namespace loanledger::cluster
