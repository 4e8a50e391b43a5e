package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/pairgate/pairgate/channel"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
)

// reloadHint says when a running daemon sees a change of owners: on its
// next reload (SIGHUP), which puts owner into effect with the policies
// (internal/daemon/reload.go).
const reloadHint = "A running pairgate serve takes the change when it reloads its config (kill -HUP <pid>, systemctl reload pairgate)."

// ownerList is owner list --json.
type ownerList struct {
	Owners []ownerEntry `json:"owners"`
}

type ownerEntry struct {
	Channel string `json:"channel"`
	Sender  string `json:"sender"`
	Notices bool   `json:"notices"` // notices of new requests go to this chat
}

// ownerChange is owner add and owner remove --json.
type ownerChange struct {
	Channel string `json:"channel"`
	Sender  string `json:"sender"`
	File    string `json:"file"`
	Changed bool   `json:"changed"` // false: the file already said so, and was left alone
}

func (a *app) ownerCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "owner",
		Short: "Who may run owner commands in chat (/pair, /approve, …): owner.senders in the config",
		Long: `Owners are the senders whose messages starting with / are owner commands
(/pair, /pending, /approve, …). They are listed per channel under owner.senders
in the config file (--config FILE, or $PAIRGATE_HOME/pairgate.yaml); the notice
chat (owner.channel and owner.sender) is an owner too.

add and remove edit that file in place: comments, key order and everything else
in it stay as they are, and it is replaced only by a complete copy that loads.`,
	}
	c.AddCommand(a.ownerAddCmd(), a.ownerRemoveCmd(), a.ownerListCmd())
	return c
}

func (a *app) ownerAddCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "add <channel> <sender>",
		Short: "Make a sender an owner: add them to owner.senders in the config file",
		Long: `add puts a sender on owner.senders.<channel> in the config file, in the
channel's canonical form (telegram tg:42 is 42), creating the file (mode 0600)
if there is none. An owner listed already is left as they are.

` + reloadHint,
		Example: `  pairgate owner add telegram 123456789
  pairgate owner add whatsapp +5491155556666 --config /etc/pairgate/pairgate.yaml`,
		Args:              exactArgs(2),
		ValidArgsFunction: positional(channelNames),
		RunE: func(_ *cobra.Command, args []string) error {
			ch, sender, err := ownerArgs(args)
			if err != nil {
				return err
			}
			f, err := a.readConfigForEdit()
			if err != nil {
				return err
			}
			res := ownerChange{Channel: ch, Sender: sender, File: f.path}
			if f.cfg.Owner.IsOwner(ch, sender) {
				return a.print(res, func(w io.Writer) {
					how := ""
					if !slices.Contains(f.cfg.Owner.Senders[ch], sender) {
						how = ": the notice chat (owner.channel and owner.sender)"
					}
					fmt.Fprintf(w, "%s %s is already an owner%s in %s; nothing changed.\n", cell(ch), cell(sender), how, f.path)
				})
			}
			out, err := config.AddOwner(f.data, f.path, ch, sender)
			if err != nil {
				return err
			}
			if err := f.write(out); err != nil {
				return err
			}
			res.Changed = true
			return a.print(res, func(w io.Writer) {
				created := ""
				if f.info == nil {
					created = " (a new file, mode 0600)"
				}
				fmt.Fprintf(w, "owner %s %s added to %s%s\n%s\n", cell(ch), cell(sender), f.path, created, reloadHint)
			})
		},
	}
}

func (a *app) ownerRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove <channel> <sender>",
		Short: "Stop a sender being an owner: take them off owner.senders in the config file",
		Long: `remove takes a sender, in any spelling of it (telegram tg:42 is 42), off
owner.senders.<channel> in the config file; a list left empty goes with its key.
A sender who is not listed is an error (exit 1). The notice chat (owner.channel
and owner.sender) is not edited: change it by hand.

` + reloadHint,
		Example:           `  pairgate owner remove telegram 123456789`,
		Args:              exactArgs(2),
		ValidArgsFunction: positional(channelNames, a.ownerSenders),
		RunE: func(_ *cobra.Command, args []string) error {
			ch, sender, err := ownerArgs(args)
			if err != nil {
				return err
			}
			f, err := a.readConfigForEdit()
			if err != nil {
				return err
			}
			o := f.cfg.Owner
			listed := slices.Contains(o.Senders[ch], sender)
			switch {
			case o.Channel == ch && o.Sender == sender:
				also := ""
				if listed {
					also = fmt.Sprintf(" (they are on owner.senders.%s too: run this again once the notice chat is changed)", ch)
				}
				return fmt.Errorf("%s %s is the notice chat (owner.channel and owner.sender in %s), which makes them an owner: change owner.sender there by hand%s; nothing was changed",
					cell(ch), cell(sender), f.path, also)
			case !listed:
				return notFound{fmt.Sprintf("%s %s is not an owner in %s; %s", cell(ch), cell(sender), f.path, ownersOn(o, ch))}
			}
			out, err := config.RemoveOwner(f.data, f.path, ch, sender)
			if err != nil {
				return err
			}
			if err := f.write(out); err != nil {
				return err
			}
			return a.print(ownerChange{Channel: ch, Sender: sender, File: f.path, Changed: true}, func(w io.Writer) {
				fmt.Fprintf(w, "owner %s %s removed from %s\n%s\n", cell(ch), cell(sender), f.path, reloadHint)
			})
		},
	}
}

func (a *app) ownerListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list [<channel>]",
		Short: "List the owners, and which chat gets the notices of new requests",
		Long: `list prints the owners, one a line: channel, sender and, for the chats that
notices of new requests go to, (notices). Those are the notice chat
(owner.channel and owner.sender) when the config names one, and every owner
when it does not.`,
		Args:              maxArgs(1),
		ValidArgsFunction: positional(channelNames),
		RunE: func(_ *cobra.Command, args []string) error {
			ch := first(args)
			if ch != "" {
				if _, err := channel.NewRegistry().Get(ch); err != nil {
					return err
				}
			}
			if err := a.locate(); err != nil {
				return err
			}
			o := a.cfg.Owner
			notices := o.NoticeChats()
			list := ownerList{Owners: []ownerEntry{}}
			var marks []string // what the text adds to each owner's line
			for _, c := range o.Owners() {
				if ch != "" && c.Channel != ch {
					continue
				}
				e, mark := ownerEntry{Channel: c.Channel, Sender: c.Sender}, ""
				if i := slices.IndexFunc(notices, func(n config.Chat) bool { return n.Channel == c.Channel && n.Sender == c.Sender }); i >= 0 {
					e.Notices, mark = true, "(notices)"
					if acct := notices[i].Account; acct != config.DefaultAccount {
						mark = "(notices, from account " + cell(acct) + ")"
					}
				}
				list.Owners = append(list.Owners, e)
				marks = append(marks, mark)
			}
			return a.print(list, func(w io.Writer) {
				if len(list.Owners) == 0 {
					a.printNoOwners(w, ch)
					return
				}
				// Padded by hand rather than with tabwriter, which does
				// not align a column that ends some lines and not others.
				var chW, sW int
				for _, e := range list.Owners {
					chW = max(chW, utf8.RuneCountInString(cell(e.Channel)))
					sW = max(sW, utf8.RuneCountInString(cell(e.Sender)))
				}
				for i, e := range list.Owners {
					line := fmt.Sprintf("%-*s  %-*s  %s", chW, cell(e.Channel), sW, cell(e.Sender), marks[i])
					fmt.Fprintln(w, strings.TrimRight(line, " "))
				}
			})
		},
	}
}

// printNoOwners says there are no owners (on ch, if set) and how to add one.
func (a *app) printNoOwners(w io.Writer, ch string) {
	on, arg := "", "<channel>"
	if ch != "" {
		on, arg = " on "+ch, ch
	}
	where := "in " + a.configName()
	if a.cfgFile == "" {
		where = "(there is no config file at " + a.configName() + ")"
	}
	fmt.Fprintf(w, "No owners%s %s: nobody may run owner commands in chat.\nAdd one with: pairgate owner add %s <sender>\n", on, where, arg)
}

// ownersOn names the owners on a channel, for a message.
func ownersOn(o config.Owner, ch string) string {
	var senders []string
	for _, c := range o.Owners() {
		if c.Channel == ch {
			senders = append(senders, cell(c.Sender))
		}
	}
	if len(senders) == 0 {
		return ch + " has no owners (see pairgate owner list)"
	}
	return "the owners on " + ch + " are " + strings.Join(senders, ", ")
}

// ownerArgs checks the channel and sender of owner add and remove, and
// returns the sender in its canonical form. A channel or sender the
// channel's rules refuse is invalid input (exit 2), named in the error.
func ownerArgs(args []string) (ch, sender string, err error) {
	ad, err := channel.NewRegistry().Get(args[0])
	if err != nil {
		return "", "", err
	}
	sender, err = ad.Normalize(args[1])
	if err != nil {
		return "", "", err
	}
	return args[0], sender, nil
}

// notFound is an error the CLI words itself for something that is not
// there (code not_found, exit 1).
type notFound struct{ msg string }

func (e notFound) Error() string        { return e.msg }
func (e notFound) Is(target error) bool { return target == store.ErrNotFound }

// editedConfig is the config file owner add and remove edit, as read.
type editedConfig struct {
	path   string      // as named (--config, or in the home), for messages
	target string      // the file to replace: path with symbolic links resolved
	data   []byte      // nil when there is no file
	info   fs.FileInfo // of target; nil when there is no file
	cfg    *config.Config
}

// readConfigForEdit reads the config file (--config FILE, else
// $PAIRGATE_HOME/pairgate.yaml). A file that is missing reads as the
// defaults, to be created; one that does not load is refused (it is not
// edited until it is fixed).
func (a *app) readConfigForEdit() (*editedConfig, error) {
	home, err := a.resolveHome()
	if err != nil {
		return nil, err
	}
	path, _ := a.configFile(home)
	f := &editedConfig{path: path, target: path}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		f.cfg = config.Default()
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	// A link (to /etc/pairgate/pairgate.yaml, say) stays a link: the file
	// it points to is the one replaced.
	if f.target, err = filepath.EvalSymlinks(path); err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if f.info, err = os.Stat(f.target); err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if !f.info.Mode().IsRegular() {
		return nil, fmt.Errorf("config %s is not a regular file, so it cannot be edited in place", path)
	}
	f.data = data
	if f.cfg, err = config.Parse(data, path); err != nil {
		return nil, fmt.Errorf("%w\n%s was not changed: fix it first (pairgate config check lists every problem)", err, path)
	}
	return f, nil
}

// write puts data in the config file's place. A new file is created 0600
// (its directory 0700). An existing one is replaced by rename with a
// complete, synced copy that has its mode and owner, unless it changed
// since it was read: then the other change is kept and this one is not
// made.
func (f *editedConfig) write(data []byte) error {
	if f.info == nil {
		err := secret.WriteNew(f.path, data)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s was created by someone else meanwhile; nothing was changed: run the command again", f.path)
		}
		if err != nil {
			return fmt.Errorf("write config: %w", err)
		}
		return nil
	}
	dir := filepath.Dir(f.target)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.target)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if err := fillTemp(tmp, data, f.info); err != nil {
		return fmt.Errorf("write config %s: %w", f.path, err)
	}
	now, err := os.ReadFile(f.target)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if !bytes.Equal(now, f.data) {
		return fmt.Errorf("%s changed while it was being edited; nothing was changed: run the command again", f.path)
	}
	if err := os.Rename(tmp.Name(), f.target); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // make the rename durable; best effort
		d.Close()
	}
	return nil
}

// fillTemp gives the new copy the mode and owner of the file it replaces,
// writes data to it, syncs it and closes it.
func fillTemp(tmp *os.File, data []byte, like fs.FileInfo) error {
	err := tmp.Chmod(like.Mode().Perm())
	if err == nil {
		err = keepOwner(tmp, like)
	}
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	return err
}
