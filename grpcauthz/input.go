package grpcauthz

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/internal/pipeline"
	"github.com/regoguard/regoguard/policy"
)

// Pre-built keys: the same *ast.Term for every call.
var (
	keyService     = ast.StringTerm("service")
	keyMethod      = ast.StringTerm("method")
	keyStream      = ast.StringTerm("stream")
	keyMetadata    = ast.StringTerm("metadata")
	keyPeer        = ast.StringTerm("peer")
	keyAddress     = ast.StringTerm("address")
	keyCertificate = ast.StringTerm("certificate")
	keyUser        = ast.StringTerm("user")
	keyMessage     = ast.StringTerm("message")
)

// marshalMessage is protojson with the names of the .proto file, and every
// field present (unset ones with their zero value), so that a rule on a
// field never reads it as absent.
var marshalMessage = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// input builds the input of call made by id, holding only what fields reads
// (all when nil). The errors are status errors to answer.
func (i *Interceptor) input(call Call, id *authn.Identity, fields *policy.InputFields) (ast.Value, error) {
	items := make([][2]*ast.Term, 0, 7)
	if fields.Reads("service") {
		svc, _, _ := strings.Cut(strings.TrimPrefix(call.FullMethod, "/"), "/")
		items = append(items, [2]*ast.Term{keyService, ast.StringTerm(svc)})
	}
	if fields.Reads("method") {
		items = append(items, [2]*ast.Term{keyMethod, ast.StringTerm(call.FullMethod)})
	}
	if fields.Reads("stream") {
		items = append(items, [2]*ast.Term{keyStream, ast.BooleanTerm(call.Stream)})
	}
	if fields.Reads("metadata") {
		items = append(items, [2]*ast.Term{keyMetadata, ast.NewTerm(i.metadataObject(call, fields.Under("metadata")))})
	}
	if fields.Reads("peer") {
		items = append(items, [2]*ast.Term{keyPeer, ast.NewTerm(peerObject(call))})
	}
	if fields.Reads("user") {
		user, err := pipeline.UserObject(id, fields.Under("user"), i.cfg.PreserveTokens)
		if err != nil {
			return nil, status.Error(codes.Unavailable, "the policy input could not be built")
		}
		items = append(items, [2]*ast.Term{keyUser, ast.NewTerm(user)})
	}
	if !i.cfg.OmitMessage && !call.Stream && fields.Reads("message") {
		msg, err := i.message(call.Request)
		if err != nil {
			return nil, err
		}
		items = append(items, [2]*ast.Term{keyMessage, ast.NewTerm(msg)})
	}
	return ast.NewObject(items...), nil
}

// metadataObject is the call's metadata without credentials, identity
// claims and secret-looking keys (in any spelling) and binary keys, repeated values joined with ", ", holding only
// the keys that fields reads (all when nil).
func (i *Interceptor) metadataObject(call Call, fields *policy.InputFields) ast.Object {
	items := make([][2]*ast.Term, 0, len(call.Metadata))
	for k, vs := range call.Metadata {
		lk := strings.ToLower(k)
		if !fields.Reads(lk) || !i.keys.inInput(lk) {
			continue
		}
		items = append(items, [2]*ast.Term{ast.StringTerm(lk), ast.StringTerm(strings.Join(vs, ", "))})
	}
	return ast.NewObject(items...)
}

// peerObject is the client's address and, when the TLS handshake verified
// it, its certificate.
func peerObject(call Call) ast.Object {
	obj := ast.NewObject()
	if call.Peer == nil {
		return obj
	}
	if call.Peer.Addr != nil {
		obj.Insert(keyAddress, ast.StringTerm(call.Peer.Addr.String()))
	}
	if cert, verified := clientCertificate(call); verified {
		if v, err := ast.InterfaceToValue(certificateClaims(cert)); err == nil {
			obj.Insert(keyCertificate, ast.NewTerm(v))
		}
	}
	return obj
}

// message is the request message as JSON, refused when it is too large or
// cannot be read: a message the policy reads is never judged as absent.
func (i *Interceptor) message(req any) (ast.Value, error) {
	m, ok := req.(proto.Message)
	if !ok {
		return nil, status.Errorf(codes.Unimplemented, "the policy reads the request message, which is not a protocol buffer (%T)", req)
	}
	// The wire size refuses a large message before it is marshalled to JSON.
	if n := proto.Size(m); n > i.maxMessage {
		return nil, status.Errorf(codes.ResourceExhausted, "the request message is larger than the %d bytes the policy may read", i.maxMessage)
	}
	data, err := marshalMessage.Marshal(m)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "the request message cannot be read as JSON")
	}
	v, err := ast.ValueFromReader(bytes.NewReader(data)) // numbers kept exact, as json.Number
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("the request message cannot be read as JSON: %v", err))
	}
	return v, nil
}
