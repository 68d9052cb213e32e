"""bot/prompt_links.py: the links to Discord's images and messages in a prompt are taken out as references;
links elsewhere are words, or refused when they point at an image the bot will not fetch."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import InvalidRequestError
from bot.prompt_links import MAX_IMAGE_LINKS, PromptLinks, ShownLink, split_links

NOW = 1_800_000_000.0
EX = f"{int(NOW) + 86_000:x}"
SIGNED = f"?ex={EX}&is=6b0000aa&hm=0a1b2c&"
CDN = f"https://cdn.discordapp.com/attachments/111/222/cat.png{SIGNED}"
MEDIA = f"https://media.discordapp.net/attachments/111/333/dog.webp{SIGNED}=&format=png&width=400&height=300"
MESSAGE = "https://discord.com/channels/1/2/3"


def split(prompt: str, own_cdn: str | None = None, *, shown: bool = False) -> PromptLinks:
    return split_links(prompt, now=NOW, own_cdn=own_cdn, shown=shown)


@pytest.mark.parametrize(
    ("prompt", "words", "files", "messages"),
    [
        (f"{CDN} the cat as a knight", "the cat as a knight", ["cat.png"], []),
        (f"the cat <{CDN}>, as a knight", "the cat as a knight", ["cat.png"], []),
        (f"{CDN} {MEDIA} the two of them", "the two of them", ["cat.png", "dog.webp"], []),
        (f"{CDN}, {CDN} once", "once", ["cat.png"], []),
        (f"a cat like {CDN}\nat night", "a cat like\nat night", ["cat.png"], []),
        (f"{MESSAGE} in red", "in red", [], [MESSAGE]),
        (f"<{MESSAGE}> and {MESSAGE} in red", "and in red", [], [MESSAGE]),
        # Midjourney's --sref takes images' links: references with their role, the parameter gone from the words.
        (f"a cat --sref {CDN} {CDN}", "a cat", ["cat.png"], []),
        (f"{CDN} a cat --sref {MEDIA}", "a cat", ["cat.png", "dog.webp"], []),
        # Another parameter's link is its value, read by bot/prompt_parameters.py.
        (f"a cat --style {CDN}", f"a cat --style {CDN}", [], []),
        ("a page https://example.com/about and more", "a page https://example.com/about and more", [], []),
        ("plain words, no links", "plain words, no links", [], []),
    ],
    ids=[
        "leading",
        "angle-brackets-comma",
        "two-hosts",
        "same-twice",
        "mid-text",
        "message",
        "message-twice",
        "sref-values",
        "sref-after-reference",
        "other-parameter",
        "web-page",
        "none",
    ],
)
def test_what_is_taken_out(prompt: str, words: str, files: list[str], messages: list[str]) -> None:
    links = split(prompt)
    assert links.words == words
    assert [image.filename for image in links.images] == files
    assert list(links.messages) == messages
    assert links.found == bool(files or messages)


def test_sref_cref_and_oref_links_are_references_marked_with_what_they_are_for() -> None:
    """Midjourney's style, character and omni references: each image a reference with its role (what the prompt
    sent says of it: bot/reference_roles.py), the parameter and its links out of the words, the parameters after
    them left for bot/prompt_parameters.py; a phone's dash works as "--" does."""
    dog = MEDIA.replace("dog.webp", "fox.png")
    links = split(f"{CDN} a knight, at dawn --cref {MEDIA} \u2014sref {dog} --ar 16:9 --oref {CDN}")
    assert links.words == "a knight, at dawn --ar 16:9"
    assert [(image.filename, image.role) for image in links.images] == [
        ("cat.png", "subject"),  # given plain and for its subject: what it is for wins
        ("dog.webp", "character"),
        ("fox.png", "style"),
    ]
    # The role's links are fetched as any Discord link is: on the CDN, with the signature alone.
    assert links.images[1].url.startswith("https://cdn.discordapp.com/attachments/111/333/dog.webp?ex=")
    assert "width" not in links.images[1].url
    # An emoji's image after --sref is a public asset, still and large.
    emoji = split("a cat --sref https://cdn.discordapp.com/emojis/123.gif").images
    still = "https://cdn.discordapp.com/emojis/123.png?size=1024"
    assert [(image.url, image.role) for image in emoji] == [(still, "style")]
    # A message's link after one is read for its images by the caller (cogs/reference_links.py), each with that role.
    links = split(f"a cat --oref {MESSAGE} {CDN} --sref {MESSAGE}")
    assert links.words == "a cat" and links.messages == ()
    assert links.role_messages == (("subject", MESSAGE), ("style", MESSAGE)) and links.found
    assert [(image.filename, image.role) for image in links.images] == [("cat.png", "subject")]
    # Midjourney's codes are no link: left in the words, for bot/prompt_parameters.py to name as left out.
    assert split("a cat --sref 1234 random --sw 50") == PromptLinks("a cat --sref 1234 random --sw 50")


def test_a_role_s_weight_goes_with_its_images_and_leaves_the_words() -> None:
    """Midjourney's ``--sw``, ``--cw`` and ``--ow`` weigh the images given after ``--sref``, ``--cref`` and
    ``--oref`` (what the prompt sent says of them: bot/reference_roles.py), wherever they stand among the words;
    the last of each counts. A weight with no link of its role stays, for bot/prompt_parameters.py to name."""
    links = split(f"a cat --sw 20 --sref {CDN} --cref {MEDIA} --cw 0 --ar 16:9 \u2014SW 300")
    assert links.words == "a cat --ar 16:9"
    assert [(image.filename, image.role, image.weight) for image in links.images] == [
        ("cat.png", "style", 300),
        ("dog.webp", "character", 0),
    ]
    links = split(f"a cat --sref {CDN}\n--sw 50\nat night --ow 500")  # no --oref: its weight stays
    assert links.words == "a cat\n\nat night --ow 500" and links.images[0].weight == 50
    # A message's images are read by the caller, which gives them the weight.
    links = split(f"a cat --oref {MESSAGE} --ow 1")
    assert links.words == "a cat" and links.weight_of("subject") == 1 and links.weight_of("style") is None
    # Without a weight, none: Midjourney's default.
    assert split(f"a cat --sref {CDN} --sw 1.5").images[0].weight is None


@pytest.mark.parametrize(
    ("prompt", "refused"),
    [
        (f"a cat --cref {CDN} --cw 101", "`--cw` takes a whole number from 0 to 100: 0 keeps only the character's"),
        (f"a cat --sref {CDN} --sw 1001", "`--sw` takes a whole number from 0 to 1000"),
        (f"a cat --oref {MESSAGE} --ow 0", "`--ow` takes a whole number from 1 to 1000"),
        (f"a cat --sref {CDN} --sw {{50, 300}}", "`--sw` takes one weight, not choices in braces"),
    ],
    ids=["cw", "sw", "ow", "choices"],
)
def test_a_weight_out_of_its_range_is_refused_with_the_range(prompt: str, refused: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        split(prompt)
    assert refused in str(raised.value)


@pytest.mark.parametrize(
    ("prompt", "refused"),
    [
        (
            "a cat --sref https://example.com/style.png",
            "`--sref` takes an image on Discord, not one from `example.com`",
        ),
        ("a cat --cref https://example.com/page", "`--cref` takes an image on Discord, not one from `example.com`"),
        (f"a cat --sref {CDN.replace(EX, '6b000000')}", "has expired"),
        # Choices of style images would go to every choice as plain references: refused, saying what to do.
        (f"a cat --sref {{{CDN}, {MEDIA}}}", "`--sref` takes images' links, not choices in braces"),
        (f"a cat \u2014CREF {{{CDN}}}", "`--cref` takes images' links, not choices in braces"),
    ],
    ids=["image-elsewhere", "page-elsewhere", "expired", "choices", "one-choice"],
)
def test_a_role_given_a_link_the_bot_will_not_fetch_is_refused(prompt: str, refused: str) -> None:
    """Where a link after --sref was left out before (the image drawn without the style the member asked for, and
    charged), it is refused now, nothing made, saying what to give instead."""
    with pytest.raises(InvalidRequestError) as raised:
        split(prompt)
    assert refused in str(raised.value)


def test_an_image_link_becomes_the_cdn_file_with_its_signature_only() -> None:
    """The media proxy's resizing and format options would hand a provider other bytes than the file's."""
    (cat,) = split(f"{CDN} x").images
    assert (cat.url, cat.content_type, cat.size) == (CDN, "image/png", 0)
    (dog,) = split(f"{MEDIA} x").images
    assert dog.url == f"https://cdn.discordapp.com/attachments/111/333/dog.webp{SIGNED}"
    assert dog.content_type == "image/webp"
    (unknown,) = split(f"https://cdn.discordapp.com/attachments/1/2/clip.mp4{SIGNED} x").images
    assert unknown.content_type == ""  # refused as "not a supported image" by the request's validation


def test_the_bot_s_own_cdn_host_counts_only_with_its_port() -> None:
    own = f"http://127.0.0.1:5123/attachments/9/a.png{SIGNED}"
    (image,) = split(f"{own} x", own_cdn="http://127.0.0.1:5123").images
    assert image.url == own
    with pytest.raises(InvalidRequestError, match=r"not from `127\.0\.0\.1`"):
        split(f"http://127.0.0.1:5124/attachments/9/a.png{SIGNED} x", own_cdn="http://127.0.0.1:5123")
    # Not an attachment path on that host: a web address, left in the words.
    assert split("http://127.0.0.1:5123/api/v10/users/@me x", own_cdn="http://127.0.0.1:5123").images == ()


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("https://example.com/cat.png a cat", "from Discord only, not from `example.com`"),
        ("a cat https://i.imgur.com/abc.JPG", "not from `i.imgur.com`"),
        (
            "https://images-ext-1.discordapp.net.evil.example/external/a.png x",
            "not from `images-ext-1.discordapp.net.evil",
        ),
        ("https://images-ext-1.discordapp.net/elsewhere/a.png x", "not from `images-ext-1.discordapp.net`"),
        ("http://169.254.169.254/latest/a.webp x", "not from `169.254.169.254`"),
        ("https://cdn.discordapp.com/attachments/1/2/cat.png a cat", "cut short"),
        ("https://cdn.discordapp.com/attachments/1/2/cat.png?ex=zz&is=1&hm=2 a cat", "has expired"),
        (f"https://cdn.discordapp.com/attachments/1/2/cat.png?ex={int(NOW) - 1:x}&is=1&hm=2 a cat", "has expired"),
        (
            " ".join(f"https://cdn.discordapp.com/attachments/1/{n}/a.png{SIGNED}" for n in range(MAX_IMAGE_LINKS + 1)),
            f"Your words bring {MAX_IMAGE_LINKS + 1} images",
        ),
    ],
    ids=[
        "other-site",
        "other-site-upper",
        "lookalike-host",
        "proxy-not-external",
        "internal-address",
        "unsigned",
        "bad-expiry",
        "expired",
        "too-many",
    ],
)
def test_refused_with_what_to_do(prompt: str, expected: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        split(prompt)
    assert expected in caught.value.user_message


def test_a_backtick_in_a_host_or_name_cannot_end_the_code_span() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        split("https://a`b.example/c.png x")
    assert "`a'b.example`" in caught.value.user_message
    with pytest.raises(InvalidRequestError) as caught:
        split("https://cdn.discordapp.com/attachments/1/2/a%60b.png x")
    assert "`a'b.png`" in caught.value.user_message


@given(st.text(alphabet=st.characters(blacklist_characters=":"), max_size=300))
def test_a_prompt_without_a_link_is_left_as_typed(prompt: str) -> None:
    assert split(prompt) == PromptLinks(prompt)


@given(
    st.lists(st.sampled_from(["a", "cat", CDN, MESSAGE, "<:x1:9>", "--ar", "16:9", ",", "<", ">", "\n"]), max_size=40)
)
def test_every_link_is_taken_out_and_no_word_is_lost(tokens: list[str]) -> None:
    prompt = " ".join(tokens)
    links = split(prompt)
    for word in ("a", "cat", "--ar", "16:9"):
        assert links.words.split().count(word) == prompt.split().count(word)
    if "--ar" not in prompt:  # with no parameter before them, every link is taken out
        assert "https://" not in links.words


@pytest.mark.parametrize(
    ("link", "url", "content_type"),
    [
        (
            "https://cdn.discordapp.com/emojis/123.webp?size=48&quality=lossless",
            "https://cdn.discordapp.com/emojis/123.webp?size=1024",
            "image/webp",
        ),
        (
            "https://cdn.discordapp.com/emojis/123.gif?size=48",
            "https://cdn.discordapp.com/emojis/123.png?size=1024",
            "image/png",
        ),
        (
            "https://media.discordapp.net/avatars/9/a_abc.gif",
            "https://cdn.discordapp.com/avatars/9/a_abc.png?size=1024",
            "image/png",
        ),
        (
            "https://cdn.discordapp.com/guilds/1/users/9/avatars/abc.png?size=64",
            "https://cdn.discordapp.com/guilds/1/users/9/avatars/abc.png?size=1024",
            "image/png",
        ),
        (
            "https://cdn.discordapp.com/embed/avatars/3.png",
            "https://cdn.discordapp.com/embed/avatars/3.png?size=1024",
            "image/png",
        ),
        # A sticker's GIF has no still PNG beside it: left a GIF, which the request's validation refuses by name.
        ("https://media.discordapp.net/stickers/77.gif", "https://cdn.discordapp.com/stickers/77.gif?size=1024", ""),
        # Discord's proxy of an image from elsewhere, shown in a message: Discord is asked, never that site.
        (
            "https://images-ext-1.discordapp.net/external/Ab_c/https/example.com/cat.jpg?width=400&height=300",
            "https://images-ext-1.discordapp.net/external/Ab_c/https/example.com/cat.jpg",
            "image/jpeg",
        ),
    ],
    ids=["emoji", "animated-emoji", "animated-avatar", "server-avatar", "default-avatar", "sticker-gif", "external"],
)
def test_discord_s_public_images_are_taken_unsigned_still_and_large(link: str, url: str, content_type: str) -> None:
    (image,) = split(f"{link} as a knight").images
    assert (image.url, image.content_type, image.size) == (url, content_type, 0)


def test_every_other_path_on_discord_s_cdn_is_a_public_image_but_only_known_ones_on_another_host() -> None:
    """Discord's CDN serves public assets at every path but attachments' (role icons, app icons); the bot's own
    API host (a fake Discord, a proxy) serves an API beside its files, so only the known paths count there."""
    (icon,) = split("https://cdn.discordapp.com/role-icons/1/abc.webp x").images
    assert icon.url == "https://cdn.discordapp.com/role-icons/1/abc.webp?size=1024"
    (unknown,) = split("https://cdn.discordapp.com/x y").images
    assert unknown.content_type == ""  # refused as "not a supported image" by the request's validation
    own = "http://127.0.0.1:5123"
    (emoji,) = split("http://127.0.0.1:5123/emojis/5.png x", own_cdn=own).images
    assert emoji.url == "http://127.0.0.1:5123/emojis/5.png?size=1024"
    assert split("http://127.0.0.1:5123/api/v10/gateway x", own_cdn=own).words.startswith("http://127.0.0.1")
    with pytest.raises(InvalidRequestError, match=r"not from `127\.0\.0\.1`"):
        split("http://127.0.0.1:5123/api/v10/x.png x", own_cdn=own)


def test_a_custom_emoji_is_its_image_and_its_name() -> None:
    """Discord's client writes a custom emoji as ``<:name:id>``: the model read that markup as words and never
    saw the emoji. Now it is a reference (an animated one's still), its name kept in the words."""
    links = split("a <:banana_cat:123>'s party with <a:dance:456> and <:banana_cat:123> again")
    assert links.words == "a banana cat's party with dance and banana cat again"
    assert [image.url for image in links.images] == [
        "https://cdn.discordapp.com/emojis/123.png?size=1024",
        "https://cdn.discordapp.com/emojis/456.png?size=1024",
    ]
    (own,) = split("<:x1:9> here", own_cdn="http://127.0.0.1:5123").images
    assert own.url == "http://127.0.0.1:5123/emojis/9.png?size=1024"
    # Not an emoji's markup: left as typed.
    assert split("<:a:1> <b:cd:2> <:ok:> :smile:").images == ()


@given(
    st.lists(
        st.one_of(
            st.text(max_size=12),
            st.sampled_from(["https://", "http://", "<", ">", ":", "<:", "<a:", "cdn.discordapp.com", "/attachments/"]),
            st.sampled_from(["/emojis/", "?ex=", "&hm=", "--sref ", ".png", "media.discordapp.net", "%60", "\n"]),
            st.sampled_from(["[", "]", "::1", "@", "#", "[1::1", "99999999999999999999999", ":80", "\x00"]),
        ),
        max_size=30,
    )
)
def test_any_text_is_read_or_refused_in_words_never_an_error(pieces: list[str]) -> None:
    """Whatever a member types, the reading ends in links and words or in a refusal for them, never an
    exception of the parser's own: "http://[1::1 a cat" made urllib raise "Invalid IPv6 URL" out of /imagine."""
    try:
        links = split("".join(pieces))
    except InvalidRequestError:
        return
    assert len(links.images) <= MAX_IMAGE_LINKS


@given(
    st.text(
        alphabet=st.characters(blacklist_characters="{}<>:/-\u2013\u2014", blacklist_categories=("Cs",)), max_size=40
    ),
    st.sampled_from(["--sref", "--cref", "\u2014oref", "--SREF"]),
    st.lists(st.sampled_from([CDN, MEDIA, "https://cdn.discordapp.com/emojis/77.png"]), min_size=1, max_size=3),
    st.sampled_from(["", " --ar 16:9", ", at dusk", " --v 6"]),
)
def test_a_role_s_links_leave_the_words_and_each_image_keeps_its_role(
    words: str, name: str, links: list[str], after: str
) -> None:
    """Whatever words come before, the links after --sref (--cref, --oref) leave the words with their parameter's
    name, each image taken once with that parameter's role; what follows them stays."""
    role = {"sref": "style", "cref": "character", "oref": "subject"}[name.lstrip("-\u2014").lower()]
    read = split(f"{words} {name} {' '.join(links)}{after}")
    assert "discordapp" not in read.words and name not in read.words
    assert {image.role for image in read.images} == {role}
    assert len(read.images) == len({link.split("?")[0].rsplit("/", 1)[-1] for link in links})
    assert read.words.endswith(after.strip(", ")) or not after


def test_in_a_message_a_link_to_an_image_elsewhere_is_taken_out_not_refused() -> None:
    """A reply's link to an image on another site is shown by Discord as its copy, an embed the reply's images
    are read from (cogs/editing.py): the link leaves the words; it is no reason to refuse the reply."""
    links = split("put https://pictures.example/hat.png on the cat", shown=True)
    assert (links.words, links.images, links.found) == ("put on the cat", (), False)
    assert links.shown == (ShownLink("https://pictures.example/hat.png", "pictures.example", wrapped=False),)
    assert split("a page https://example.com/about", shown=True).words == "a page https://example.com/about"
    # Listed for the caller to wait for Discord's picture of each (cogs/link_pictures.py): once each, one in < >
    # marked (Discord shows no picture of it) unless it is also typed bare, a host named back without its
    # backticks or port.
    text = "<https://a.example/x.png>, https://b`x.example:8443/y.webp and <https://c.example/z.jpg> of"
    links = split(f"{text} https://a.example/x.png", shown=True)
    assert links.words == "and of"
    assert links.shown == (
        ShownLink("https://a.example/x.png", "a.example", wrapped=False),
        ShownLink("https://b`x.example:8443/y.webp", "b'x.example", wrapped=False),
        ShownLink("https://c.example/z.jpg", "c.example", wrapped=True),
    )


@given(
    st.lists(
        st.sampled_from(
            ["a", "fox", "--sw 50", "\u2014SW 7", "--ow 9", "--cw 30", " ", "  ", "\t", "\n", ",", "--sw", "12"]
        ),
        max_size=40,
    )
)
def test_a_weight_leaves_the_words_and_every_other_word_stays_in_order(pieces: list[str]) -> None:
    """Whatever surrounds them, the weights of the roles given (here --sref's and --cref's: --sw and --cw, a dash and
    a whole number with spaces or tabs between, as a word of its own) leave the words, and every other word stays, in
    its order; --ow (no --oref given) is one of those words."""
    text = " ".join(pieces)
    read = split(f"{text} --sref {CDN} --cref {MEDIA}")
    weight = re.compile(r"(?<!\S)(?:--|\u2014)(?:sw|cw)[ \t]+[0-9]{1,9}(?!\S)", re.IGNORECASE)
    # The words around the links end as a sentence's do (``_joined``), and again once a weight at their end is gone.
    once = text.strip().rstrip(",;:").rstrip()
    taken = weight.sub(" ", once)
    expected = taken.strip().rstrip(",;:").rstrip() if taken != once else once
    # Read in one pass, as Midjourney reads them: "--sw --sw 50 12" leaves "--sw 12", named back as left out.
    assert read.words.split() == expected.split()
