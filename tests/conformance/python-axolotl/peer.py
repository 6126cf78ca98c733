#!/usr/bin/env python3
"""CONFORMANCE.md's JSON-lines peer, implemented on python-axolotl (an independent
libsignal-v3 implementation), so that `interop-sim peer` can be tested against it.
One request per line on stdin, one answer per line on stdout."""
import base64
import json
import logging
import sys

from axolotl.axolotladdress import AxolotlAddress
from axolotl.ecc.curve import Curve
from axolotl.groups.groupcipher import GroupCipher
from axolotl.groups.groupsessionbuilder import GroupSessionBuilder
from axolotl.groups.senderkeyname import SenderKeyName
from axolotl.groups.state.senderkeyrecord import SenderKeyRecord
from axolotl.identitykey import IdentityKey
from axolotl.identitykeypair import IdentityKeyPair
from axolotl.protocol.ciphertextmessage import CiphertextMessage
from axolotl.protocol.prekeywhispermessage import PreKeyWhisperMessage
from axolotl.protocol.senderkeydistributionmessage import SenderKeyDistributionMessage
from axolotl.protocol.whispermessage import WhisperMessage
from axolotl.protocol import whisperprotos_pb2
from axolotl.sessionbuilder import SessionBuilder
from axolotl.sessioncipher import SessionCipher
from axolotl.state.prekeybundle import PreKeyBundle
from axolotl.state.prekeyrecord import PreKeyRecord
from axolotl.state.signedprekeyrecord import SignedPreKeyRecord
from axolotl.tests.inmemoryaxolotlstore import InMemoryAxolotlStore


def b64(data):
    return base64.b64encode(bytes(data)).decode()


def unb64(text):
    return base64.b64decode(text, validate=True)


def parse_prekey_message(body):
    """python-axolotl 0.2.3 reads an absent preKeyId as 0 (the proto2 default) and then looks up
    one-time prekey 0; libsignal reads it as absent. Restore that reading here (adapter fix, the
    library is untouched)."""
    msg = PreKeyWhisperMessage(serialized=body)
    proto = whisperprotos_pb2.PreKeyWhisperMessage()
    proto.ParseFromString(body[1:])
    if not proto.HasField("preKeyId"):
        msg.preKeyId = None
    return msg


class SenderKeys:
    def __init__(self):
        self.store = {}

    def storeSenderKey(self, name, record):
        self.store[name.serialize()] = record.serialize()

    def loadSenderKey(self, name):
        data = self.store.get(name.serialize())
        return SenderKeyRecord(serialized=data) if data else SenderKeyRecord()


class Peer:
    def __init__(self, req):
        self.name = req["name"]
        self.device_id = req.get("device_id", 1)
        self.store = InMemoryAxolotlStore()
        pair = Curve.generateKeyPair()
        ident = self.store.identityKeyStore
        ident.identityKeyPair = IdentityKeyPair(IdentityKey(pair.getPublicKey()), pair.getPrivateKey())
        ident.localRegistrationId = req["registration_id"]
        spk = Curve.generateKeyPair()
        sig = Curve.calculateSignature(pair.getPrivateKey(), spk.getPublicKey().serialize())
        self.store.storeSignedPreKey(1, SignedPreKeyRecord(1, 0, spk, sig))
        self.next_prekey = 1
        self.sender_keys = SenderKeys()

    def identity(self):
        return self.store.getIdentityKeyPair().getPublicKey()

    def op_bundle(self, req):
        spk = self.store.loadSignedPreKey(1)
        out = {
            "registration_id": self.store.getLocalRegistrationId(),
            "device_id": self.device_id,
            "identity_key": b64(self.identity().serialize()),
            "signed_prekey_id": 1,
            "signed_prekey": b64(spk.getKeyPair().getPublicKey().serialize()),
            "signed_prekey_signature": b64(spk.getSignature()),
        }
        if req.get("one_time", True):
            pid = self.next_prekey
            self.next_prekey += 1
            pair = Curve.generateKeyPair()
            self.store.storePreKey(pid, PreKeyRecord(pid, pair))
            out["prekey_id"] = pid
            out["prekey"] = b64(pair.getPublicKey().serialize())
        return out

    def op_start(self, req):
        b = req["bundle"]
        has_otpk = b.get("prekey_id") is not None
        bundle = PreKeyBundle(
            b["registration_id"], b.get("device_id", 1),
            b["prekey_id"] if has_otpk else None,
            Curve.decodePoint(unb64(b["prekey"]), 0) if has_otpk else None,
            b["signed_prekey_id"], Curve.decodePoint(unb64(b["signed_prekey"]), 0),
            unb64(b["signed_prekey_signature"]),
            IdentityKey(unb64(b["identity_key"]), 0))
        SessionBuilder(self.store, self.store, self.store, self.store, req["peer"], 1).processPreKeyBundle(bundle)
        return {}

    def cipher(self, peer):
        return SessionCipher(self.store, self.store, self.store, self.store, peer, 1)

    def op_encrypt(self, req):
        if not self.store.containsSession(req["peer"], 1):
            raise ValueError("no session")
        msg = self.cipher(req["peer"]).encrypt(unb64(req["plaintext"]))
        kind = "prekey" if msg.getType() == CiphertextMessage.PREKEY_TYPE else "message"
        return {"type": kind, "body": b64(msg.serialize())}

    def op_decrypt(self, req):
        body = unb64(req["body"])
        cipher = self.cipher(req["peer"])
        if req["type"] == "prekey":
            plaintext = cipher.decryptPkmsg(parse_prekey_message(body), False)
        elif req["type"] == "message":
            plaintext = cipher.decryptMsg(WhisperMessage(serialized=body), False)
        else:
            raise ValueError("bad type")
        return {"plaintext": b64(plaintext)}

    def key_name(self, group, sender):
        return SenderKeyName(group, AxolotlAddress(sender, 1))

    def op_group_create(self, req):
        skdm = GroupSessionBuilder(self.sender_keys).create(self.key_name(req["group"], self.name))
        return {"distribution": b64(skdm.serialize())}

    def op_group_join(self, req):
        skdm = SenderKeyDistributionMessage(serialized=unb64(req["distribution"]))
        GroupSessionBuilder(self.sender_keys).process(self.key_name(req["group"], req["sender"]), skdm)
        return {}

    def op_group_encrypt(self, req):
        cipher = GroupCipher(self.sender_keys, self.key_name(req["group"], self.name))
        return {"body": b64(cipher.encrypt(unb64(req["plaintext"])))}

    def op_group_decrypt(self, req):
        cipher = GroupCipher(self.sender_keys, self.key_name(req["group"], req["sender"]))
        return {"plaintext": b64(cipher.decrypt(unb64(req["body"])))}


def main():
    logging.disable(logging.WARNING)  # python-axolotl logs expected refusals as warnings
    peer = None
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            op = req["op"]
            if op == "init":
                peer = Peer(req)
                answer = {"identity_key": b64(peer.identity().serialize())}
            elif peer is None:
                raise ValueError("not initialized")
            else:
                answer = getattr(peer, "op_" + op)(req)
            answer["ok"] = True
        except Exception as e:  # every failure is an answer, as the protocol says
            answer = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
