package sim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/sipbridge/sipbridge/realtime/sim"
)

// Example runs one simulated region and opens a GA session against it, the
// way the binary's default mode and the tests do.
func Example() {
	region := sim.New(sim.Config{Region: "eastus2", APIKey: "sk-demo", VoiceHz: 440})
	defer region.Close()
	base, err := region.Listen("127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, base+"/v1/realtime?model=gpt-realtime",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer sk-demo"}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.CloseNow()
	_, data, err := conn.Read(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	var ev struct {
		Type    string
		Session struct{ Type, Model string }
	}
	_ = json.Unmarshal(data, &ev)
	fmt.Println(ev.Type, ev.Session.Type, ev.Session.Model)
	// Output: session.created realtime gpt-realtime
}
