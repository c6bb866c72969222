"""A built-in generator of simple children's stories: the offline corpus.

Machines without internet cannot fetch TinyStories, so the `demo` and `smoke` profiles train on
this instead. It writes short stories in the same register -- "Once upon a time" / "One day"
openings, simple past-tense narrative, named children and animals, toys, places, feelings, a small
problem and its resolution, quoted dialogue, sometimes a moral -- so that a tiny GPT trained on it
learns real structure (consistent characters, agreement, punctuation) over a few thousand word
forms with Zipf-like frequencies.

Stories come from hand-written word lists and plot templates filled in by one `random.Random(seed)`
(only its `random()` is used): the same seed gives the same stories, byte for byte, on any machine.
Text is plain ASCII, 3-12 sentences a story, paragraphs separated by blank lines; no story contains
an end-of-text marker.
"""
from __future__ import annotations

import math
import random
import re
import string
from bisect import bisect_right
from collections.abc import Iterator

__all__ = [
    "AN_EXCEPTIONS",
    "A_EXCEPTIONS",
    "MAX_SENTENCES",
    "NAMES",
    "SPEECH_WORDS",
    "count_sentences",
    "generate",
    "stories",
]

MAX_SENTENCES = 12


# --- weighted choice -----------------------------------------------------------------------------


# x**s from correctly rounded operations only (IEEE sqrt, *, /), so weights are the same bits on
# every machine; libm pow() may differ in the last place
_POW = {0.5: math.sqrt, 0.75: lambda x: math.sqrt(x) * math.sqrt(math.sqrt(x)), 1.0: lambda x: x,
        1.25: lambda x: x * math.sqrt(math.sqrt(x)), 1.5: lambda x: x * math.sqrt(x)}


class _W:
    """Items drawn with Zipf-like weights 1/(rank+k)^s: list order is commonness order."""

    __slots__ = ("cum", "items", "total")

    def __init__(self, items, s: float = 1.0, k: float = 1.5):
        items = list(items)
        if not items:
            raise ValueError("empty word list")
        cum, t = [], 0.0
        for i in range(len(items)):
            t += 1.0 / _POW[s](i + k)
            cum.append(t)
        # the last item repeated: random() * total may round up to total itself
        self.items, self.cum, self.total = items + items[-1:], cum, t

    def __call__(self, r):
        return self.items[bisect_right(self.cum, r.random() * self.total)]


def _words(text: str) -> list[str]:
    # comma-separated entries, so multi-word entries ("teddy bear") survive
    return [w.strip() for w in text.replace("\n", " ").split(",") if w.strip()]


# --- inflection ----------------------------------------------------------------------------------


def _plural(w: str) -> str:
    if w.endswith(("s", "x", "z", "ch", "sh")):
        return w + "es"
    if w.endswith("y") and w[-2] not in "aeiou":
        return w[:-1] + "ies"
    return w + "s"


def _nouns(text: str, s: float = 1.0, k: float = 2.0) -> _W:
    """Entries 'sg' or 'sg|pl'; the last word of a compound inflects ('teddy bear' -> 'teddy bears')."""
    out = []
    for e in _words(text):
        sg, _, pl = e.partition("|")
        if not pl:
            head, _, last = sg.rpartition(" ")
            pl = (head + " " if head else "") + _plural(last)
        out.append((sg, pl))
    return _W(out, s, k)


def _past(v: str) -> str:
    if v.endswith("e"):
        return v + "d"
    if v.endswith("y") and v[-2] not in "aeiou":
        return v[:-1] + "ied"
    return v + "ed"


def _ing(v: str) -> str:
    if v.endswith("ie"):
        return v[:-2] + "ying"
    if v.endswith("e") and not v.endswith(("ee", "ye", "oe")):
        return v[:-1] + "ing"
    return v + "ing"


def _third(v: str) -> str:
    if v in ("do", "go"):
        return v + "es"
    if v == "have":
        return "has"
    if v.endswith(("s", "x", "z", "ch", "sh")):
        return v + "es"
    if v.endswith("y") and v[-2] not in "aeiou":
        return v[:-1] + "ies"
    return v + "s"


def _verb(e: str) -> tuple[str, str, str, str]:
    """'base', 'base|past' or 'base|past|ing', then an optional particle: 'pick up'."""
    head, _, tail = e.partition(" ")
    tail = " " + tail if tail else ""
    parts = head.split("|")
    base = parts[0]
    past = parts[1] if len(parts) > 1 else _past(base)
    ing = parts[2] if len(parts) > 2 else _ing(base)
    return base + tail, past + tail, ing + tail, _third(base) + tail


def _verbs(text: str, s: float = 1.0, k: float = 2.0) -> _W:
    return _W([_verb(e) for e in _words(text)], s, k)


def _list(text: str, s: float = 1.0, k: float = 2.0) -> _W:
    return _W(_words(text), s, k)


# --- lexicon (hand-written; order = how common) ---------------------------------------------------

GIRLS = _words("""
Lily, Sue, Mia, Amy, Lucy, Sara, Anna, Emma, Ella, Kim, Jane, Zoe, Molly, Rose, Daisy, Lisa, Mary,
Sophie, Grace, Ruby, Jenny, Kate, Ellie, Chloe, Hannah, Sally, Maya, Nina, Ava, Olivia, Bella, Clara,
Julia, Alice, Emily, Sophia, Lola, Poppy, Holly, Ivy, Hazel, Luna, Stella, Nora, Eva, Leah, Abby,
Amber, Betty, Cindy, Dora, Gina, Heidi, Iris, Jill, Kelly, Laura, Megan, Nancy, Pam, Penny, Rita,
Tina, Wendy, Ann, Beth, Carla, Dana, Fay, Gwen, Hope, Joy, Karen, Lena, Mabel, Nell, Opal, Peggy,
Rosie, Susie, Tess, Vera, Willow, Ada, Bonnie, Cora, Dolly, Edie, Flora, Greta, Jade, Juno, Kitty,
Lottie, Millie, Nellie, Pearl, Sadie, Tilly, Violet, Winnie, Yara, Zara, Elsa, Fiona, Harper, Isla,
Josie, Lila, Maddie, Nola, Piper, Quinn, Rae, Skye, Thea, Una, Wren, Ariel, Bea, Cleo, Delia, Gemma
""")
BOYS = _words("""
Tom, Max, Ben, Tim, Timmy, Jack, Sam, Leo, Joe, Bob, Jake, Tommy, Billy, Mike, Dan, Alex, Jim,
Luke, Noah, Ryan, Ted, Finn, Oliver, Harry, Charlie, Henry, Peter, Paul, Mark, John, David, Eli,
Adam, Ollie, Jason, Kevin, Danny, Bobby, Johnny, Eddie, Freddy, George, Oscar, Jacob, Liam, Ethan,
Lucas, Owen, Toby, Zack, Andy, Ron, Nick, Kyle, Roy, Gus, Hugo, Ivan, Jay, Kai, Louis, Milo, Ned,
Otto, Pete, Ralph, Rex, Seth, Theo, Vince, Walt, Arlo, Bruno, Cody, Dean, Felix, Grant, Hank, Jasper,
Kurt, Leon, Miles, Nate, Reed, Sid, Tony, Wade, Zane, Elliot, Jonah, Archie, Rudy, Simon, Victor, Wes,
Abe, Basil, Caleb, Dexter, Ezra, Frank, Gabe, Hal, Isaac, Joel, Kit, Lenny, Moe, Nico, Omar, Percy
""")
PETS = _words("""
Spot, Buddy, Fluffy, Whiskers, Coco, Bubbles, Sunny, Patch, Pip, Biscuit, Lucky, Rusty, Snowy,
Ginger, Peanut, Button, Pepper, Shadow, Cookie, Honey, Fuzzy, Hoppy, Squeaky, Bingo, Chip, Dot,
Flash, Goldie, Jelly, Misty, Nibbles, Pebble, Pudding, Rocky, Scout, Sparky, Sprinkles, Toffee,
Waddles, Ziggy, Bolt, Bongo, Boots, Puddles, Quacky, Twinkle, Mittens, Socks, Marshmallow, Bean,
Blue, Buttercup, Cupcake, Dash, Echo, Fidget, Gizmo, Hopscotch, Jingle, Muffin, Noodle, Oreo,
Pickles, Pumpkin, Razzle, Skipper, Tango, Tiny, Velvet, Wiggles, Zippy
""")
NAMES = tuple(GIRLS + BOYS + PETS)  # every character name the generator uses
_GIRL, _BOY, _PET = _W(GIRLS, 0.75, 3.0), _W(BOYS, 0.75, 3.0), _W(PETS, 0.75, 3.0)

ANIMALS = _nouns("""
duck, cat, dog, bird, bunny, puppy, kitten, bear, fish|fish, frog, mouse|mice, owl, fox, squirrel,
rabbit, duckling, turtle, butterfly, bee, horse, cow, pig, sheep|sheep, lion, elephant, monkey,
ladybug, snail, chicken, hen, goat, deer|deer, giraffe, tiger, penguin, dolphin, whale, crab,
ant, worm, zebra, pony, unicorn, dragon, dinosaur, lamb, goose|geese, swan, parrot, robin,
octopus|octopuses, seal, kangaroo, koala, panda, hippo, donkey, bat, spider, caterpillar, crow,
eagle, raccoon, hedgehog, beaver, otter, wolf|wolves, llama, lizard, snake, mole, chipmunk, hamster,
calf|calves, piglet, chick, gorilla, camel, rhino, cheetah, leopard, jellyfish|jellyfish,
starfish|starfish, seahorse, firefly, dragonfly, grasshopper, cricket, beetle, moth,
peacock, flamingo, pelican, toad, tadpole, goldfish|goldfish, ostrich, polar bear, reindeer|reindeer,
moose|moose, skunk, porcupine, sloth, walrus, badger, woodpecker, sparrow, bluebird, puffin,
buffalo|buffaloes, turkey, rooster, pup, cub, kitty, bumblebee, pigeon, weasel, lobster, shark,
alligator, crocodile, armadillo, baboon, bison|bison, blackbird, bull, canary, chameleon,
chimpanzee, cockatoo, coyote, crane, cuckoo, dove, eel, elk|elk, emu, falcon, ferret, finch, gazelle,
gecko, gerbil, goldfinch, gopher, guinea pig, gull, hare, heron, hummingbird, hyena, iguana, jaguar,
kingfisher, lark, lemur, lynx, magpie, manatee, meerkat, mink, mule, newt, nightingale,
orangutan, ox|oxen, panther, parakeet, poodle, possum, puma, quail, rat, raven, salamander,
sea lion, sea turtle, shrimp|shrimp, slug, squid, stork, tortoise, toucan, trout|trout, vulture,
wasp, wombat, woodchuck, wren, yak, bulldog, sheepdog, hound, stingray, clownfish|clownfish,
pufferfish|pufferfish, tree frog, field mouse|field mice, baby bird, billy goat, tomcat, mare, foal,
bunny rabbit, grizzly bear, teddy bear, sea otter, honeybee, glowworm, ladybird, centipede
""", 1.0, 2.0)
# hero animals: the ones a children's story makes a main character of
HERO_ANIMALS = _nouns("""
duck, bunny, cat, dog, bird, puppy, kitten, bear, frog, mouse|mice, owl, fox, squirrel, duckling,
turtle, fish|fish, bee, butterfly, elephant, monkey, lion, pig, horse, penguin, tiger, giraffe,
hedgehog, raccoon, otter, lamb, pony, dragon, dinosaur, chick, koala, panda, kangaroo, snail,
ladybug, beaver, whale, dolphin, goat, cow, hippo, zebra, seal, parrot, robin, sparrow, chipmunk,
hamster, crab, caterpillar, unicorn, llama, sloth, tortoise, piglet, cub, foal, ant
""", 1.0, 2.0)
_SOUND_WORDS = """
dog:bark, puppy:bark, pup:bark, cat:meow, kitten:meow, kitty:meow, duck:quack, duckling:quack,
bird:chirp, chick:peep, robin:sing|sang, sparrow:chirp, bluebird:sing|sang, cow:moo, calf:moo,
pig:oink, piglet:oink, lion:roar, tiger:roar, dragon:roar, dinosaur:roar, bear:growl, cub:growl,
bee:buzz, bumblebee:buzz, honeybee:buzz, mouse:squeak, hamster:squeak, owl:hoot, horse:neigh,
pony:neigh, mare:neigh, foal:neigh, frog:croak, toad:croak, tree frog:croak, snake:hiss,
wolf:howl, coyote:howl, goat:bleat, sheep:bleat, lamb:bleat, donkey:bray, mule:bray, goose:honk,
swan:honk, hen:cluck, chicken:cluck, rooster:crow, turkey:gobble, monkey:chatter, squirrel:chatter,
chipmunk:chatter, elephant:trumpet, parrot:squawk, crow:caw, raven:caw, seal:bark, sea lion:bark,
dolphin:click, cricket:chirp, canary:sing|sang, dove:coo, pigeon:coo, hyena:laugh, gull:cry|cried,
bulldog:bark, poodle:bark, hound:howl, tomcat:meow, grizzly bear:growl, kingfisher:whistle,
nightingale:sing|sang, lark:sing|sang, finch:chirp, wren:chirp, puppy dog:bark
"""
SOUNDS = {}
for _e in _words(_SOUND_WORDS):
    _a, _, _v = _e.partition(":")
    SOUNDS[_a] = _verb(_v)
_DEFAULT_SOUND = ("squeak", "squeaked", "squeaking", "squeaks")

TOYS = _nouns("""
ball, doll, teddy bear, kite, toy car, toy truck, toy train, boat, robot, puzzle, drum, balloon,
wagon, bike, scooter, jump rope, marble, puppet, toy plane, rocket, top, toy dinosaur, toy duck,
rubber duck, rocking horse, spinning top, toy boat, toy horse, music box, toy robot,
yo-yo, toy drum, toy bunny, stuffed bear, toy soldier, rag doll, toy piano, whistle,
toy ship, toy castle, dollhouse, toy kitchen, train set, toy rocket, beach ball, rubber ball,
soccer ball, baseball bat, tricycle, skateboard, hula hoop, toy guitar, toy phone, stuffed dog,
stuffed cat, toy lion, toy tractor, fire truck, race car, toy bus, toy airplane, paper kite,
bubble wand, building block, toy sword, toy crown, tea set, toy tent, rocking chair, sailboat,
toy elephant, toy giraffe, stuffed duck, toy penguin, finger puppet, toy trumpet, pogo stick,
hobby horse, toy helicopter, toy digger, snow sled, toy wand, puppet theater, doll carriage
""", 1.0, 1.5)
THINGS = _nouns("""
box, hat, book, rock, stick, shell, leaf|leaves, flower, basket, bag, cup, bowl, feather, stone,
button, ribbon, blanket, pillow, umbrella, key, bell, map, shoe, sock, coat, scarf|scarves, mitten,
bottle, jar, brush, mirror, clock, lamp, candle, rope, ladder, bucket, shovel, net, crown, ring,
necklace, coin, letter, card, picture, pencil, sticker, backpack, ticket, flag, plate, spoon, fork,
pot, pan, kettle, teapot, vase, towel, toothbrush, pail, wheel, pebble, acorn, pinecone, glove, boot,
slipper, dress, shirt, jacket, sweater, cap, belt, apron, bow, badge, medal, trophy, gem, jewel,
pearl, crystal, magnet, flashlight, lantern, compass, telescope, camera, radio, phone, guitar, flute,
trumpet, violin, harp, paintbrush, crayon, marker, eraser, notebook, envelope, present, gift,
package, wand, broom, mop, hammer, nail, needle, bracelet, locket, shield, sword, helmet, mask,
cape, wig, bead, seashell, rug, quilt, puzzle piece, jigsaw, paper boat, paper plane,
clothespin, whisk, ladle, rolling pin, cookie jar, watering can, wheelbarrow, rake, hose, sled,
snow globe, kaleidoscope, magnifying glass, butterfly net, fishing rod, birdhouse, tent, treasure map,
treasure chest, glass ball, pinwheel,
scarecrow, snowman|snowmen, sandcastle, piggy bank, lunchbox, pencil case, hairbrush, headband,
sunhat, raincoat, rain boot, swimsuit, tablecloth, napkin, teacup, saucer, drinking straw,
uniform, ukulele, oar, anchor, arrow, axe, banner, barrel, basin, blanket, bookmark, bottle cap,
bracelet, brick, bubble, cage, calendar, candlestick, carpet, chain, chalk, clipboard, comb,
cork, cradle, crate, cushion, diary, dice|dice, dish, doorbell, drawer, easel, egg cup, fan,
fence post, flowerpot, frame, funnel, globe, goggles|goggles, hairpin, hammock, handkerchief,
harmonica, hook, hourglass, ice cube, ink pot, jug, kazoo, keychain, ladybug pin, leash, lid,
lollipop stick, mailbag, mat, matchbox, medallion, mug, music sheet, nest, nutcracker, paddle,
paint pot, paper bag, paper crown, parasol, pebble, pen, pepper pot, photo, pin, pitcher, pocket
watch, postcard, pouch, purse, quill, raft, rattle, ribbon, rocket ship, ruler, sack, saddle,
sandbag, scissors|scissors, scoop, scroll, shoebox, sieve, sign, spinning wheel, sponge, spool,
stamp, stool, suitcase, sunglasses|sunglasses, tambourine, tape measure, thimble, tin can, toolbox,
torch, tray, trunk, tub, tulip bulb, tube, tutu, vest, wagon wheel, wallet, washcloth, weather vane,
whistle, windmill, wind chime, wire, wreath, xylophone, yarn ball, zipper
""", 1.0, 2.5)
FOODS = _nouns("""
apple, cookie, cake, banana, cupcake, carrot, sandwich, candy|candies, pie, orange, cherry, strawberry,
muffin, pancake, grape, pear, peach, lollipop, pizza, cracker, berry, blueberry, lemon, melon,
watermelon, pumpkin, potato|potatoes, tomato|tomatoes, egg, nut, seed, pretzel, donut, bagel,
biscuit, waffle, bun, plum, raspberry, cucumber, pickle, cabbage, onion, mushroom,
gingerbread man|gingerbread men, cinnamon roll, jelly bean, gumdrop, cherry pie, apple pie, corn dog,
hamburger, taco, noodle, dumpling, meatball, sausage, corn cob, coconut, pineapple, mango|mangoes,
kiwi, apricot, radish, turnip, pea, bean, peanut, walnut, chestnut, lettuce leaf|lettuce leaves,
sugar cookie, brownie, cheese sandwich, jam sandwich, popsicle, marshmallow, treat, snack,
avocado, blackberry, cantaloupe, celery stick, cheeseburger, chicken leg, chocolate bar, clementine,
cranberry, croissant, cupcake, date, egg roll, fig, fruit tart, gingersnap, grapefruit, honey cake,
ice pop, jelly roll, lemon tart, lime, macaroon, meat pie, nectarine, oatmeal cookie, olive,
pastry|pastries, peanut butter sandwich, pepper, pinecone cake, plum pie, pork chop, pudding cup,
quesadilla, raisin, rice cake, scone, shortcake, snow cone, sponge cake, squash, sundae,
tangerine, tart, toffee, tortilla, trail bar, truffle, veggie,
zucchini, cheese stick, berry muffin, banana bread loaf, carrot cake, candy cane, cookie bar
""", 1.0, 2.0)
MASSFOOD = _list("""
bread, cheese, honey, soup, ice cream, cake, candy, jam, rice, pasta, cereal, popcorn, porridge,
pudding, spaghetti, salad, chocolate, yogurt, oatmeal, jelly, butter, corn, fruit, pie, toast,
pizza, fish, carrots, grapes, cookies, berries, nuts, seeds, peas, beans, noodles, crackers,
broccoli, carrot soup, chicken soup, cornbread, custard, fudge, granola, gravy, macaroni, mashed
potatoes, meatloaf, oat bread, pancakes, peanut butter, pumpkin pie, raisins, spinach, stew,
sweet corn, tomato soup, trail mix, vegetable soup, whipped cream, birthday cake, fruit salad
""", 1.0, 2.0)
DRINKS = _list("milk, water, juice, lemonade, tea, hot cocoa, apple juice, orange juice, warm milk, "
               "soup, pink lemonade, cold water, hot chocolate, berry juice, grape juice, "
               "chocolate milk, carrot juice, mint tea, fizzy water, smoothie", 1.0, 1.5)
PLACES = _list("""
park, garden, forest, beach, lake, river, farm, zoo, store, school, playground, hill, field, pond,
backyard, library, castle, cave, meadow, jungle, woods, town, market, bakery, barn, sea, big city,
village, toy store, kitchen, yard, museum, circus, fair, camp, island, valley, orchard, swamp,
mountain, street, bridge, shop, pool, harbor, station, lighthouse, treehouse, desert, ocean,
candy shop, pet shop, flower shop, ice cream shop, duck pond, old mill, playroom, sandbox,
swing set, big tree, snowy hill, sunflower field, vegetable garden, berry patch, fishing pond,
train station, post office, bus stop, hospital, doctor's office, farmers market, apple orchard,
airport, aquarium, art room, attic, basement, bathroom, bedroom, bookstore, butterfly garden,
campground, carnival, church, classroom, clearing, cliff, coral reef, cornfield, creek, dock,
farmhouse, fire station, garage, greenhouse, grocery store, hallway, hayloft, hilltop, kindergarten,
living room, marsh, moon, nest, palace, pasture, pier, pumpkin patch, rainforest, riverbank,
rose garden, sandpit, seashore, shed, ski hill, skating rink, stable, stadium, summer camp,
theater, tide pool, toy shop, tunnel, volcano, waterfall, wheat field, windmill, workshop
""", 1.0, 2.5)
_PREP = {"beach": "on", "farm": "on", "hill": "on", "mountain": "on", "island": "on", "bridge": "on",
         "street": "on", "snowy hill": "on", "swing set": "on", "zoo": "at", "store": "at",
         "school": "at", "market": "at", "bakery": "at", "fair": "at", "circus": "at", "museum": "at",
         "station": "at", "pool": "at", "harbor": "at", "toy store": "at", "candy shop": "at",
         "pet shop": "at", "flower shop": "at", "ice cream shop": "at", "shop": "at", "lighthouse": "at",
         "old mill": "at", "train station": "at", "post office": "at", "bus stop": "at",
         "hospital": "at", "doctor's office": "at", "farmers market": "at", "playground": "at",
         "big tree": "under", "library": "at", "camp": "at", "duck pond": "by", "fishing pond": "by",
         "pond": "by", "lake": "by", "river": "by", "sea": "by", "ocean": "by", "airport": "at",
         "aquarium": "at", "bookstore": "at", "carnival": "at", "church": "at", "cliff": "on",
         "creek": "by", "dock": "on", "fire station": "at", "grocery store": "at", "hilltop": "on",
         "kindergarten": "at", "moon": "on", "pier": "on", "riverbank": "on", "seashore": "on",
         "ski hill": "on", "skating rink": "at", "stadium": "at", "summer camp": "at", "theater": "at",
         "tide pool": "by", "toy shop": "at", "volcano": "near", "waterfall": "by", "windmill": "by",
         "coral reef": "by", "farmhouse": "at", "pasture": "in", "stable": "in"}
WILD = _list("""
forest, woods, meadow, hill, cave, jungle, river, lake, beach, mountain, field, valley, island,
swamp, pond, garden, orchard, desert, old barn, tall grass, dark woods, green hills, rocky shore,
pine forest, rainforest, marsh, canyon, sand dunes, snowy woods, bamboo forest, wild meadow
""", 1.0, 2.0)
NATURE = _nouns("""
tree, bush, rock, flower, log, stone, mushroom, fence, hill, puddle, pond, bench, leaf|leaves,
old tree, apple tree, oak tree, pine tree, rose bush, haystack, sand dune, waterfall, stream,
tree stump, wooden bridge, garden gate, mailbox, lamp post, sunflower, daisy|daisies, tulip, weed,
vine, cactus|cactuses, pile of leaves|piles of leaves, berry bush|berry bushes, willow tree, anthill,
birch tree, boulder, branch, clover, dandelion, fern, hedge, lily pad, maple tree, molehill,
palm tree, pumpkin, reed, root, shrub, snowbank, stump, thistle, twig, violet, wildflower
""", 1.0, 2.0)
FURNITURE = _list("""
bed, table, chair, couch, rug, shelf, desk, sofa, window, door, stairs, floor, box, toy box,
kitchen table, closet, blanket, pillow, sink, bathtub, porch, steps, bookshelf, cupboard, dresser,
armchair, bench, bunk bed, counter, cushion, doormat, fireplace, high chair, piano, stool, windowsill
""", 1.0, 2.0)
CONTAINERS = _list("bag, basket, pocket, box, backpack, bucket, toy box, lunchbox, hat, jar, wagon, "
                   "little bag, shoe box, cookie jar, pail, sack, suitcase, drawer, purse, pouch",
                   1.0, 1.5)
SKY = _list("""
stars, moon, clouds, sky, sun, birds, rainbow, kites, planes, moon and stars, big white clouds,
shooting star, night sky, snowflakes, raindrops, falling leaves, blue sky, butterflies, fireflies,
geese flying south, hot air balloon, full moon, sunset, storm clouds, twinkling stars
""", 1.0, 2.0)
BODY = _nouns("""
hand, foot|feet, nose, ear, eye, tail, paw, knee, head, arm, leg, tummy|tummies, finger, toe, mouth,
cheek, wing, back, chin, elbow, neck, shoulder, belly|bellies, tooth|teeth, whisker, beak, hoof|hooves,
ankle, thumb, wrist, forehead, lip, hair, fur
""", 1.0, 2.0)
BODYP = _list("feet, ears, eyes, paws, wings, toes, legs, cheeks, knees, whiskers, tails", 1.0, 2.0)
# a child's body: no paws, wings or beaks
KID_BODY = _list("hand, foot, nose, ear, knee, head, arm, leg, tummy, finger, toe, back, elbow, "
                 "neck, shoulder, ankle, thumb, wrist, chin, cheek", 1.0, 2.0)
KID_BODYP = _list("hands, feet, ears, eyes, toes, fingers, arms, legs, cheeks, knees, shoulders, "
                  "thumbs", 1.0, 2.0)
PEOPLE = _nouns("""
baker, farmer, doctor, teacher, nurse, king, queen, prince, princess, wizard, fairy|fairies,
pirate, giant, clown, chef, firefighter, police officer, painter, gardener, fisherman|fishermen,
sailor, dancer, singer, builder, vet, zookeeper, librarian, astronaut, mail carrier, bus driver,
knight, witch, elf|elves, troll, scientist, magician, shopkeeper, old man|old men,
old woman|old women, neighbor, lady|ladies, man|men, woman|women, baby|babies, grandma, grandpa,
acrobat, artist, captain, carpenter, cook, cowboy, dentist, detective, diver, drummer, explorer,
farmhand, goblin, guard, hunter, inventor, jester, juggler, lifeguard, mayor, mermaid, miner,
musician, pilot, plumber, potter, ranger, robot, sheriff, shepherd, soldier, tailor, toymaker, twin,
umpire, waiter, weaver, woodcutter
""", 1.0, 2.0)
JOBS = _list("""
baker baking bread, farmer feeding the cows, painter painting a fence, clown juggling balls,
gardener watering roses, chef stirring a pot of soup, fisherman catching fish, builder building a
wall, doctor helping a sick puppy, teacher reading a story, sailor tying a rope, musician playing a
song, dancer spinning on one toe, mail carrier bringing letters, firefighter washing a red truck,
zookeeper feeding the lions, shepherd counting sheep, toymaker fixing a doll, carpenter making a
chair, potter shaping a bowl, tailor sewing a coat, juggler tossing rings, magician pulling a rabbit
out of a hat, woodcutter chopping logs, vet brushing a horse, librarian stacking books
""", 1.0, 2.0)
FAMILY = _list("mom, dad, grandma, grandpa, mommy, daddy, nana, auntie, uncle, papa", 1.25, 1.0)
_HE_FAMILY = ("dad", "grandpa", "daddy", "uncle", "papa")
CRAFTS = _list("""
card, picture, necklace, paper crown, clay pot, drawing, bracelet, paper boat, birdhouse, painting,
paper kite, flower crown, little cake, sand castle, paper flower, friendship bracelet, bookmark,
puppet, mask, toy house, clay bird, paper heart, button necklace, pinecone owl, sock puppet,
macaroni picture, leaf crown, painted rock, paper lantern, paper chain
""", 1.0, 1.5)
SKILLS_KID = _list("""
ride a bike, swim, fly a kite, tie her shoes, climb the big tree, jump rope, whistle, read a book,
catch a ball, skate, bake a cake, draw a horse, build a sandcastle, count to ten, write her name,
play the drum, ride a pony, do a cartwheel, make a paper plane, hop on one foot, blow bubbles,
paint a rainbow, skip stones, sing a song, kick a ball, dance, stand on her head, button her coat,
play the piano, throw a ball far, juggle three balls, dive into the pool, spell her name, fold a
paper crane, whistle a tune, ride a scooter, build a tower of blocks, do a somersault
""", 1.0, 1.5)
SKILLS_ANIMAL = _list("""
swim, fly, climb the big tree, jump over the log, catch a ball, run fast, dig a hole, hop very high,
find food, build a nest, dive into the pond, sing a song, dance, hide in the grass, swing from a branch,
slide down the hill, cross the stream, climb the hill, catch a fish, splash in the river, roll a ball
""", 1.0, 1.5)
TRAPS = _list("""
net, bush, hole, fence, puddle of mud, tree, box, pile of sticks, thorny bush, tall grass, old can,
deep hole, sticky web, muddy ditch, pipe, bucket, high branch, big rock, flower pot, fishing line
""", 1.0, 1.5)
VEHICLES = _nouns("""
car, bus, train, truck, boat, plane, bike, tractor, ship, helicopter, rocket, fire truck, taxi|taxis,
van, sailboat, canoe, submarine, motorcycle, jeep, hot air balloon, bulldozer, digger, dump truck,
garbage truck, police car, race car, school bus, ice cream truck, tugboat, kayak, raft, cart,
carriage, wagon, scooter, ambulance, airplane, spaceship, steam train, fishing boat
""", 1.0, 2.0)
INSTRUMENTS = _list("drum, piano, guitar, flute, violin, trumpet, harp, bells, xylophone, tambourine, "
                    "horn, recorder, harmonica, banjo, cello, triangle, maracas, ukulele, kazoo, tuba",
                    1.0, 2.0)
GAMES = _list("""
tag, hide-and-seek, catch, ball, pretend, house, dress-up, hopscotch, leapfrog, soccer, marbles,
board games, peekaboo, red light green light, duck duck goose, cards, puzzles, jump rope,
follow the leader, pirates, school, tea party, musical chairs, kickball, freeze tag
""", 1.0, 2.0)
SHAPES = _nouns("circle, star, heart, square, triangle, moon, diamond, flower, oval, rectangle, "
                "tree, fish|fish, duck, bunny", 1.0, 2.0)
MONTHS = _list("May, June, July, April, August, October, December, September, March, January, "
               "February, November", 0.75, 2.0)
DAYS = _list("Monday, Saturday, Sunday, Friday, Tuesday, Wednesday, Thursday", 0.75, 1.0)
SEASONS = _list("summer, spring, winter, fall, autumn", 0.75, 1.0)
PARTS = _list("day, morning, afternoon, evening, night", 1.0, 1.0)
BANG = _list("splash, boom, crash, pop, bang, buzz, ding, thump, whoosh, knock, crunch, squeak, "
             "creak, zoom, plop, drip, thud, clang, swish, beep, honk, ring, rumble, tick tock, "
             "pitter patter, clatter, boing, ding dong, snap, crackle", 1.0, 2.0)
ROOMS = _list("kitchen, bedroom, bathroom, living room, attic, basement, garage, hallway, playroom, "
              "nursery, porch, shed, closet, cellar, pantry, laundry room", 1.0, 2.0)
WEATHER_N = _list("rain, snow, wind, sun, fog, storm, thunder, rainbow, breeze, frost, hail, "
                  "lightning, drizzle, sunshine, mist", 1.0, 2.0)

SIZE = _list("little, big, small, tiny, huge, tall, giant, long, short, round, chubby, skinny, "
             "enormous, wee, plump, teeny, massive, lanky", 1.25, 1.0)
COLOR = _list("""
red, blue, green, yellow, pink, purple, orange, white, black, brown, gray, gold, silver, golden,
bright, spotted, striped, dark, light blue, pale, rainbow, shiny red, sky blue, grass green, lemon,
rosy, sandy, snowy, navy, violet, crimson, peach, cream, polka dot, turquoise, lavender, scarlet,
amber, coral, copper, emerald, ivory, lilac, maroon, mint green, olive, plum, ruby red, tan, teal
""", 1.0, 1.5)
ADJ = _list("""
shiny, soft, pretty, old, new, special, fluffy, sparkly, smooth, funny, strange, magic, wooden,
beautiful, nice, lovely, cute, big, little, favorite, secret, bumpy, heavy, fuzzy, colorful, fancy,
clean, dirty, wet, warm, cold, sticky, squishy, bouncy, glittery, dusty, rusty, muddy, sandy,
wonderful, amazing, perfect, mysterious, lucky, silly, strong, sharp, round, square, flat, pointy,
curly, furry, cozy, bright, empty, full, noisy, quiet, rare, precious, plain, tiny, broken, hidden,
glowing, twinkly, wobbly, crinkly, stripy, lumpy, crooked, slippery, shimmering, painted, bent,
tall, light, fragile, golden, woolly, plastic, huge, dull, enormous, ancient, bendy, bumpy,
chipped, creaky, cracked, curious, dainty, dazzling, delicate, droopy, elegant, fat, feathery,
fizzy, floppy, fresh, frosty, gigantic, gleaming, glossy, gooey, grand, greasy, grubby, gummy,
hairy, hollow, icy, itchy, jagged, jolly, knobbly, leafy, leaky, lonely, loose, lumpy, magical,
marvelous, messy, mighty, misty, modern, narrow, neat, odd, oily, orange, patched, peculiar,
plump, polished, puffy, ragged, rubbery, rumpled, rough, salty, scratchy, shaggy, silky, sleek,
slimy, smelly, snug, soggy, sparkling, speckled, spiky, spotless, springy, spotty, squeaky, steep,
stiff, sturdy, sunny, super, swirly, tangled, tattered, thick, thin, tidy, tough, twisty, useful,
velvet, warm, wavy, wiggly, wild, wise, wrinkly, zippy
""", 1.0, 2.5)
FADJ = _list("yummy, big, tasty, sweet, juicy, warm, fresh, delicious, little, crunchy, sour, soft, "
             "hot, creamy, ripe, sticky, salty, giant, chewy, spicy, gooey, fluffy, crispy, tiny, "
             "golden, buttery, cheesy, chocolatey, crumbly, frosty, fruity, honeyed, lemony, "
             "minty, nutty, sugary, toasty, tangy, zesty", 1.0, 1.5)
CADJ = _list("""
happy, kind, curious, brave, friendly, shy, silly, smart, clever, gentle, playful, good,
sweet, nice, funny, lazy, grumpy, busy, polite, proud, quiet, loud, cheerful, careful, helpful,
honest, young, wise, strong, fast, bossy, naughty, cute, caring, generous, patient, lively, bold,
noisy, messy, greedy, stubborn, jolly, adventurous, creative, thoughtful, loyal, sneaky, timid,
fearless, sleepy, hungry, tiny, small, clumsy, bouncy, cheeky, fluffy, chatty, dreamy, eager,
fussy, gentle, giggly, hardworking, humble, lonely, mischievous, nosy, obedient, picky, quick,
restless, rude, selfish, sensible, smiley, sporty, spunky, tidy, tough, trusty, wiggly, zany
""", 1.0, 2.0)
GOOD = _list("""
happy, glad, excited, proud, thankful, safe, calm, cheerful, joyful, grateful, relieved, amazed,
brave, surprised, warm, loved, special, hopeful, peaceful, lucky, pleased, delighted, thrilled,
cozy, free, strong, curious, silly, giggly, bouncy, content, ecstatic, merry, overjoyed, jolly
""", 1.0, 1.5)
BAD = _list("""
sad, scared, angry, upset, worried, lonely, tired, hungry, bored, afraid, nervous, frightened,
confused, grumpy, jealous, sorry, mad, shy, cold, sick, frustrated, embarrassed, disappointed, sleepy,
thirsty, gloomy, cross, unhappy, lost, hurt, cranky, sulky, miserable, puzzled, fussy, uneasy,
annoyed, anxious, ashamed, bothered, cheated, crabby, dizzy, exhausted, fed up, glum, grouchy,
heartbroken, helpless, impatient, left out, moody, restless, stuck, terrified, troubled, weary
""", 1.0, 1.5)
WEATHER = _list("sunny, rainy, windy, cloudy, snowy, warm, cold, hot, bright, foggy, stormy, chilly, "
                "beautiful, lovely, gray, cool, breezy, wet, frosty, misty, muggy, drizzly, icy, "
                "gloomy, golden, crisp, clear, blustery", 1.0, 1.5)
ADV = _list("""
quickly, slowly, happily, carefully, gently, loudly, quietly, softly, all day, fast, sadly, bravely,
proudly, kindly, excitedly, for a long time, nervously, politely, patiently, eagerly,
calmly, together, cheerfully, joyfully, angrily, shyly, very fast, a lot, merrily, sleepily,
playfully, freely, busily, lazily, wildly, noisily, silently, gracefully, clumsily, boldly,
wisely, lightly, swiftly, tiredly, hungrily, neatly, sweetly, anxiously, brightly, curiously,
gladly, gratefully, grumpily, helpfully, honestly, hopefully, madly, quietly, rapidly, secretly,
sheepishly, shakily, smoothly, steadily, stubbornly, suddenly, tenderly, thankfully, warmly,
wearily, all morning, all afternoon, until dinner, in the sun, in the rain, by the window,
under the stars
""", 1.0, 2.0)
NUM = _list("two, three, four, five, many, some, six, lots of, ten, seven, eight, a few, nine, "
            "twelve, a hundred, so many, twenty, eleven, fifty, a dozen", 1.0, 1.5)
LOUD = _list("loud, strange, funny, soft, big, scary, little, squeaky, tiny, happy, sad, rumbling, "
             "crackling, buzzing, tapping, ringing, splashing, whistling, humming, scratching, "
             "thumping, creaking, rustling", 1.0, 1.5)

# activity verbs: fine with no object ("she danced"), "loved dancing", "wanted to dance"
VI = _verbs("""
play, run|ran|running, jump, dance, sing|sang, swim|swam|swimming, climb, hop|hopped|hopping,
skip|skipped|skipping, laugh, giggle, rest, sleep|slept, walk, explore, race, splash, spin|spun|spinning,
slide|slid, swing|swung, roll, nap|napped|napping, wander, twirl, crawl, paddle, march, stomp,
tiptoe, whistle, hum|hummed|humming, clap|clapped|clapping, cheer, sit|sat|sitting, wait,
hide|hid|hiding, wave, dig|dug|digging, bounce, float, dive|dived, sail, skate, wiggle, stretch,
yawn, shout, read|read, paint, draw|drew, cook, bake, zoom, gallop, waddle, flutter, sneeze,
tumble, scamper, leap|leaped, jog|jogged|jogging, stroll, sway, wobble, glide, soar, dash,
scurry, prance, wriggle, doze, snooze, snore, smile, practice, write|wrote, listen, peek, shiver,
fly|flew, drift, sparkle, glow, blink, nod|nodded|nodding, bow, rush, hurry, relax, cuddle, sulk,
pout, squeal, wink, chat|chatted|chatting, whisper, sniff, look around, sing|sang along,
run|ran|running around, play outside, splash around, run|ran|running away, sit|sat|sitting down,
lie|lay|lying down, get|got|getting up, climb up, jump up and down, hop|hopped|hopping along,
look up, wake|woke up, calm down, cheer up, come|came back, go|went home, kneel|knelt,
paddle around, skip|skipped|skipping along, slip|slipped|slipping, trip|tripped|tripping, stumble,
tremble, sob|sobbed|sobbing, cry|cried, babble, bob|bobbed|bobbing, camp, celebrate, chuckle,
cough, dart, dip|dipped|dipping, fidget, flap|flapped|flapping, flip|flipped|flipping,
flop|flopped|flopping, frolic|frolicked|frolicking, frown, gasp, grin|grinned|grinning,
grow|grew, hike, hover, jingle, knock, lean, limp, nibble, pace, pedal, perch, pose, pounce, puff,
rattle, roam, rock, row, rumble, scoot, scream, shine|shone, shuffle, sigh, sink|sank, skid|skidded|skidding,
slither, slurp, sneak, sniffle, snuggle, sprint, squirm, stamp, stand|stood up, stare, step|stepped|stepping,
stop|stopped|stopping, strut|strutted|strutting, surf, swoop, toddle, trot|trotted|trotting,
trudge, wade, wail, weep|wept, whimper, whine, whirl, yelp, zigzag|zigzagged|zigzagging, scribble,
sew|sewed, shop|shopped|shopping, sled|sledded|sledding, somersault, travel|traveled, vanish,
wander off, tag along, sunbathe, bathe, blush, burp, chirp, clatter, cling|clung, crouch,
daydream, drum|drummed|drumming, echo|echoed, fall|fell asleep, fetch, gobble, gulp, hiccup,
hop|hopped|hopping about, jiggle, kick, linger, mutter, nuzzle, paw, peep, plod|plodded|plodding,
practice again, prowl, purr, quiver, ramble, rejoice, rustle, scramble, shriek, skip|skipped|skipping rope,
splash about, squeak, squint, swagger, swish, tap|tapped|tapping, thud|thudded|thudding, tinkle,
totter, twinkle, twitch, wheeze, whoop, yodel|yodeled
""", 1.0, 2.5)
# object verbs: "she <past> the box", "wanted to <base> a red ball"
VT = _verbs("""
find|found, see|saw, hold|held, carry, take|took, pick up, bring|brought, show, share, hide|hid|hiding,
drop|dropped|dropping, lose|lost, wash, grab|grabbed|grabbing, lift, clean, keep|kept, touch, fix,
look at, play with, put|put|putting away, throw|threw, catch|caught, hug|hugged|hugging, paint,
draw|drew, make|made, buy|bought, push, pull, open, fold, wrap|wrapped|wrapping, count, collect,
fill, shake|shook, polish, decorate, borrow, toss, stack, bury|buried, spot|spotted|spotting, notice,
discover, admire, squeeze, sniff, chase, follow, check, move, swap|swapped|swapping, hang|hung up,
lend|lent, trade, kick, roll, return, drag|dragged|dragging, smell, dry, dust, color, sort, mend,
build|built, spin|spun|spinning, bounce, tap|tapped|tapping, pat|patted|patting, stroke,
guard, study, feel|felt, gather, measure, weigh, unwrap|unwrapped|unwrapping,
tidy, scrub|scrubbed|scrubbing, rinse, brush, sketch, tie|tied|tying, untie|untied|untying,
wave, juggle, balance, bring|brought back, set|set|setting down, give|gave back,
look for, search for, ask|asked for, wish|wished for, care for, point at, wave at,
stare at, peek at, laugh at, smile at, tug|tugged|tugging at, reach for, dream|dreamed of,
think|thought of, talk|talked about, sing|sang about, bend|bent, blow|blew on, cover, cuddle, dangle,
deliver, examine, fetch, flip|flipped|flipping, grip|gripped|gripping, hand out, inspect, kiss,
knock over, label, lick, lock, mark, nudge, pack, pass, peel, pick, pinch, place, plant, point to,
pour out, press, prop|propped|propping up, protect, rattle, repair, rescue, rock, rub|rubbed|rubbing,
save, scatter, scoop up, scratch, shine|shined, shove, sniff at, splash, sprinkle, stir|stirred|stirring,
stretch, swing|swung, test, throw|threw away, tickle, toss up, trace, unlock, unpack, warm up,
water, wipe, wind|wound up, wobble, zip|zipped|zipping up
""", 1.0, 2.5)
VFOOD = _verbs("eat|ate|eating, share, taste, bake, munch on, nibble on, pack, cook, smell, pick, "
               "bite|bit|biting into, peel, save, chew, slice, gobble up, savor, sniff, crunch on, "
               "sprinkle sugar on, dip|dipped|dipping, lick, finish, devour, serve", 1.0, 1.5)
SPEECH = _list("said, asked, shouted, cried, whispered, yelled, replied, answered, called, laughed, "
               "giggled, exclaimed, squealed, sang, sobbed, mumbled, explained, cheered, gasped, "
               "sniffed, grumbled, chirped, added, agreed, begged, boasted, promised, suggested, "
               "wondered, sighed", 1.0, 1.5)
SHOUT = _list("shouted, cried, yelled, called, laughed, giggled, exclaimed, squealed, cheered, "
              "said, gasped, sang", 1.0, 1.5)
# hobbies: "who loved to <base>", "loved <ing>"
FUN = _verbs("""
play, dance, sing|sang, swim|swam|swimming, run|ran|running, jump, paint, draw|drew, read|read, climb,
explore, bake, skip|skipped|skipping, hop|hopped|hopping, laugh, build|built, ride|rode|riding,
play outside, fly|flew kites, splash, make|made friends, pick|picked flowers, play games, skate,
sled|sledded|sledding, dig|dug|digging, race, cook, tell|told stories, help, garden, fish, hike,
roll down hills, blow|blew bubbles, chase butterflies, collect shells, look at the stars,
write|wrote letters, play music, draw pictures, sail, camp, count stars, make|made things
""", 1.0, 2.0)
# lowercase words that may follow a closing ?" or !" (a speech tag), used by the tests
SPEECH_WORDS = frozenset(SPEECH.items) | {"she", "he", "they", "it"}

TIME = _list("""
One day, Then, Later, The next day, One morning, Soon, After that, One sunny day, That night,
After a while, Suddenly, In the morning, That afternoon, Every day, The next morning, After lunch,
One {part}, After school, Later that day, At last, In the afternoon, After breakfast,
A few days later, Every morning, Before bed, After dinner, One {weather} {part}, On {day},
One {season} day, In the {season}, That evening, Some days later, After a long time,
On the way home, At night, In {month}, On a {weather} {day}, Early one morning,
Late one night, All of a sudden, Just then, A week later, On the weekend, Before long
""", 1.0, 2.0)

# words taking "a" though spelled with a vowel, and "an" though spelled with a consonant
A_EXCEPTIONS = frozenset({"unicorn", "unicorns", "uniform", "unicycle", "useful", "usual", "unique",
                          "one", "once", "ukulele", "university", "union", "unit", "user", "euro",
                          "european", "ewe", "utensil"})
AN_EXCEPTIONS = frozenset({"hour", "hours", "hourglass", "honest", "honor", "heir", "herb"})

_CMP = _W([  # for characters: "the bravest girl"
    ("happy", "happier", "happiest"), ("fast", "faster", "fastest"), ("tall", "taller", "tallest"),
    ("brave", "braver", "bravest"), ("kind", "kinder", "kindest"), ("strong", "stronger", "strongest"),
    ("funny", "funnier", "funniest"), ("smart", "smarter", "smartest"), ("silly", "sillier", "silliest"),
    ("small", "smaller", "smallest"), ("loud", "louder", "loudest"), ("nice", "nicer", "nicest"),
    ("quick", "quicker", "quickest"), ("slow", "slower", "slowest"), ("busy", "busier", "busiest"),
    ("lucky", "luckier", "luckiest"), ("young", "younger", "youngest"), ("old", "older", "oldest"),
    ("gentle", "gentler", "gentlest"), ("quiet", "quieter", "quietest"), ("wise", "wiser", "wisest"),
    ("cute", "cuter", "cutest"), ("noisy", "noisier", "noisiest"), ("messy", "messier", "messiest"),
    ("sleepy", "sleepier", "sleepiest"), ("hungry", "hungrier", "hungriest"),
    ("clever", "cleverer", "cleverest"), ("friendly", "friendlier", "friendliest"),
    ("tiny", "tinier", "tiniest"), ("big", "bigger", "biggest"), ("proud", "prouder", "proudest"),
    ("bold", "bolder", "boldest"), ("calm", "calmer", "calmest"), ("jolly", "jollier", "jolliest"),
    ("lazy", "lazier", "laziest"), ("shy", "shyer", "shyest"), ("tough", "tougher", "toughest"),
], 1.0, 2.0)
_TCMP = _W([  # for things: "the shiniest ball"
    ("big", "bigger", "biggest"), ("pretty", "prettier", "prettiest"), ("shiny", "shinier", "shiniest"),
    ("soft", "softer", "softest"), ("small", "smaller", "smallest"), ("long", "longer", "longest"),
    ("nice", "nicer", "nicest"), ("fluffy", "fluffier", "fluffiest"), ("tiny", "tinier", "tiniest"),
    ("bright", "brighter", "brightest"), ("fancy", "fancier", "fanciest"), ("old", "older", "oldest"),
    ("sparkly", "sparklier", "sparkliest"), ("heavy", "heavier", "heaviest"),
    ("light", "lighter", "lightest"), ("cool", "cooler", "coolest"), ("huge", "huger", "hugest"),
    ("clean", "cleaner", "cleanest"), ("strange", "stranger", "strangest"), ("new", "newer", "newest"),
    ("smooth", "smoother", "smoothest"), ("cute", "cuter", "cutest"), ("funny", "funnier", "funniest"),
    ("dirty", "dirtier", "dirtiest"), ("warm", "warmer", "warmest"), ("cold", "colder", "coldest"),
    ("tall", "taller", "tallest"), ("fuzzy", "fuzzier", "fuzziest"), ("bumpy", "bumpier", "bumpiest"),
    ("round", "rounder", "roundest"), ("sharp", "sharper", "sharpest"), ("thick", "thicker", "thickest"),
    ("wide", "wider", "widest"), ("shaggy", "shaggier", "shaggiest"), ("silky", "silkier", "silkiest"),
], 1.0, 2.0)
CLIMBS = _list("big tree, fence, tall ladder, old wall, rocks, bookshelf, slide, roof, gate, "
               "apple tree", 1.0, 1.5)
PICNIC = _list("in the park, in the meadow, by the lake, on the beach, by the river, on the hill, "
               "in the garden, in the backyard, under a big tree, by the pond, in the woods, on the "
               "grass, by the sea, in the orchard", 1.0, 1.5)
GOALS = _list("big tree, old fence, red barn, top of the hill, pond, big rock, garden gate, swings, "
              "slide, end of the street, old oak tree, mailbox, river, finish line, flower bed", 1.0, 1.5)
STONES = _list("rock, stick, root, stone, log, toy, branch, pebble, bump, shoe", 1.0, 1.5)
TREES = _list("tree, big tree, old tree, oak tree, apple tree, bush, willow tree, pine tree", 1.0, 1.5)
HOMES = _list("town, village, house, city, cottage, house by the sea, farmhouse, castle, hut, "
              "apartment, treehouse, house on a hill, house by the lake", 1.0, 1.5)
ANIMAL_HOMES = _list("forest, nest, den, burrow, pond, barn, meadow, garden, tree, hole, cave, field, "
                     "log, shell", 1.0, 1.5)
CLOTHES = _nouns("""
hat, coat, dress, boots|boots, scarf|scarves, shirt, jacket, sweater, cap, shoes|shoes, raincoat,
mittens|mittens, socks|socks, skirt, pajamas|pajamas, cape, apron, vest, overalls|overalls, sunhat,
rain boots|rain boots, uniform, tutu, bow tie, sneakers|sneakers, slippers|slippers, crown, bathrobe,
cardigan, gloves|gloves, bonnet, hoodie
""", 1.0, 1.5)
CHORES = _list("""
clean the house, wash the dishes, cook dinner, feed the ducks, water the flowers, fold the clothes,
make the bed, sweep the floor, carry the bags, bake some bread, pick the apples, set the table,
dig in the garden, paint the fence, wash the car, feed the chickens, rake the leaves, hang the washing,
dust the shelves, sort the socks, pull the weeds, stack the wood, mop the kitchen, tidy the toys
""", 1.0, 1.5)
BAKED = _list("cookies, cupcakes, muffins, pies, brownies, biscuits, cinnamon rolls, pancakes, "
              "waffles, scones, gingerbread men, banana muffins, sugar cookies, tarts, buns", 1.0, 1.5)
HELPEES = _W([("lady", "she"), ("man", "he"), ("woman", "she"), ("farmer", "he"), ("baker", "she"),
              ("neighbor", "he"), ("grandma", "she"), ("teacher", "she"), ("king", "he"),
              ("fisherman", "he"), ("queen", "she"), ("mail carrier", "she"), ("shopkeeper", "he"),
              ("gardener", "she"), ("painter", "he"), ("nurse", "she")], 1.0, 2.0)
CSIZE = _list("little, small, young, tiny, big, tall, short, wee", 1.25, 1.0)
HADJ = _list("small, big, cozy, old, little, pretty, blue, yellow, quiet, busy, happy, sunny, warm, "
             "tiny, white, green, red, lovely, messy, tall, sleepy, peaceful, friendly, noisy", 1.0, 2.0)
CAREFUL = _list("careful, good, brave, kind, quiet, nice, gentle, quick, patient, polite", 1.0, 1.5)
FAIRY = _list("kind fairy, old wizard, little elf, friendly witch, wise owl, tiny fairy, smiling "
              "queen, talking frog, silver fox, old turtle", 1.0, 1.5)
_PLANT = _W([("apple tree", "apples"), ("sunflower", "seeds"), ("tomato plant", "tomatoes"),
             ("strawberry plant", "strawberries"), ("pumpkin vine", "pumpkins"),
             ("bean plant", "beans"), ("cherry tree", "cherries"), ("pear tree", "pears"),
             ("carrot patch", "carrots"), ("pea plant", "peas"), ("lemon tree", "lemons"),
             ("peach tree", "peaches"), ("blueberry bush", "blueberries"), ("plum tree", "plums"),
             ("melon vine", "melons"), ("orange tree", "oranges"), ("grape vine", "grapes")])
TAILS = _list("""
with a big smile, in the warm sun, all afternoon, for a long time, with {his} {P}, near the {nat},
after lunch, every day, again and again, as fast as {he} could, under the {color} sky, in the rain,
with all {his} might, until the sun went down, with {his} {color} {toy}, on {day}, in the {season},
by the {nat}, before dinner, with a happy heart, like a {animal}, one more time, just for fun,
with {his} best friend, in the {weather} wind, at the {place2}, on the way home, without a sound,
with a little help, after a long nap, in a big hurry, with {his} eyes closed, all by {self}
""", 1.0, 2.5)


# --- slots ----------------------------------------------------------------------------------------


class _Slots(dict):
    """format_map mapping: story-fixed keys are given; any other key is drawn once on first use."""

    __slots__ = ("r",)

    def __missing__(self, key):
        f = _FILL.get(key)
        if f is None:  # numbered copies draw independently: {obj2}
            f = _FILL[key.rstrip("0123456789")]
        v = f(self)
        self[key] = v
        return v


def _render(tpl: str, s: _Slots) -> str:
    sl = _Slots(s)
    sl.r = s.r
    return tpl.format_map(sl)


def _at(place: str) -> str:
    return _PREP.get(place, "in") + " the " + place


# generic clauses about the hero, by kind; {S} is the subject (name or pronoun); a sentence's
# first letter is capitalised when the sentence is assembled
ACT = _W([
    "{S} {vi_ed} {adv}", "{S} {vi_ed} {at_place}", "{S} {vt_ed} a {adj} {obj}",
    "{S} played with {his} {thing}{tail}", "{S} went to the {place2} with {his} {P}",
    "{S} tried to {vt} the {obj}", "{S} smiled at the {animal}", "{S} {vfood_ed} a {fadj} {food}",
    "{S} ate some {mfood}", "{S} drank some {drink}", "{S} played with {num} {adj} {toys}",
    "{S} ran to {his} {P}", "{S} started to {vi}", "{S} found {num} {color} {objs} under the {nat}",
    "{S} {vi_ed} and {vi_ed2}", "{S} looked up at the {sky}", "{S} waved to the {animals}",
    "{S} counted the {animals} in the {wild}", "{S} put the {obj} in {his} {container}",
    "{S} sat on the {furn} and {vi_ed}", "{S} hugged {his} {P}", "{S} gave the {animal} a {food}",
    "{S} {vt_ed} the {objs} one by one", "{S} kept {vi_ing}{tail}", "{S} made a {craft} for {his} {P}",
    "{S} asked {his} {P} for some {mfood}", "{S} shared {his} {food} with a {animal}",
    "{S} went outside to {vi}", "{S} watched the {animals} {vi}", "{S} put on {his} {color} {cloth}",
    "{S} helped {his} {P} {chore}", "{S} rode in a {color} {vehicle} to the {place2}",
    "{S} played the {instrument}{tail}", "{S} and {his} friends played {game}",
    "{S} drew a {color} {shape} on a {adj} {obj}", "{S} wiggled {his} {bodyp}",
    "{S} met {num} {people} {at_place}", "{S} got {his} {bodyp} wet in a big puddle",
    "{S} went to {vi} in the {room}", "{S} {vfood_ed} {num} {foods}", "{S} pretended to be a {animal}",
    "{S} made cookies shaped like {shapes}", "{S} decided to {vi}{tail}",
    "{S} laughed so hard that {his} {body} hurt", "{S} {vt_ed} {his} {thing}",
    "{S} looked for {adj} {objs} {at_place}", "{S} built a tall tower of {objs}",
    "{S} picked {num} {color} flowers for {his} {P}", "{S} {vi_ed}{tail}",
], 1.0, 4.0)
FEEL = _W([
    "{S} was very {good}", "{S} felt {feel}", "{S} wanted to {vi}{tail}", "{S} loved {vi_ing}{tail}",
    "{S} was not {bad} anymore", "{S} could not stop {vi_ing}", "{S} did not want to {vi}",
    "{S} was too {bad} to {vi}", "{S} was as {cmpb} as a {animal}", "{S} felt {cmp} than ever",
    "{S} wished for a {color} {toy}", "{S} thought about the {adj} {obj}",
    "{S} remembered {his} {adj} {obj}", "{S} dreamed about {color} {animals}",
    "{S} loved {vt_ing} {adj} {objs}", "{S} liked {vehicles} and {toys}",
    "{S} wanted to be a {person} one day", "{S} was a little {bad}",
    "{S} was so {good} that {he} {vi_ed}", "{S} had never seen a {size} {animal} before",
    "{S} liked to {vt} {adj} {objs}", "{S} was the {sup} {kind} {prep} the {place}",
    "{S} was {bad}", "{S} was happy", "{S} was tired", "{S} felt {good} inside",
], 1.0, 4.0)
SEE = _W([
    "{S} saw a {size} {ocolor}{animal} {vi_ing} near the {nat}", "{S} heard a {loud} noise",
    "there was a {adj} {obj} on the {furn}", "the sun was shining", "it was a {weather} day",
    "the {animal} looked {feel}", "{his} {P} gave {him} a {fadj} {food}",
    "the {animals} {vi_ed} in the {wild}", "a {size} {animal} came to say hello",
    "the wind blew the {objs} away", "{S} saw {num} {animals} {vi_ing} by the {nat}",
    "the {animal} {vi_ed} {adv}",
    "the {person} smiled at {him}", "{S} saw a {job}", "a {vehicle} went by with a loud {bang}",
    "{S} heard the {A} {Asound_b}", "the {A} was {Asound_ing} {adv}",
    "the {people} were {vi_ing} in the {room}", "the {wthr} made {him} {feel}",
    "{S} heard a {bang} from the {room}", "{S} found a {color} {obj} under the {nat}",
    "it started to {wverb}", "{S} saw a {oadj}{color} {vehicle}", "{S} noticed a {adj} {obj} by the {nat}",
    "{num} {animals} were {vi_ing} {at_place}", "{his} {P} called {him} for {meal}",
    "a {size} {animal} sat on the {nat}", "the {sky} looked {adj}",
], 1.0, 4.0)
PROG = _W([
    "{S} was {vi_ing} {at_place}", "{S} was {vt_ing} a {adj} {obj}", "{S} was {vfood_ing} a {fadj} {food}",
    "{S} was playing with {his} {thing}", "{S} was walking to the {place2}",
    "{S} was helping {his} {P}", "{S} was looking for {his} {thing}", "{S} was {vi_ing}{tail}",
], 1.0, 3.0)
_CLAUSE_KINDS = {"act": ACT, "feel": FEEL, "see": SEE, "prog": PROG}
WVERB = _list("rain, snow, get dark, get windy, drizzle, pour, get cold, thunder", 1.0, 1.5)
MEALS = _list("lunch, dinner, breakfast, a snack, supper, tea", 1.0, 1.5)


def _clause(s: _Slots, kind: _W, subj: str) -> str:
    sl = _Slots(s)
    sl.r = s.r
    sl["S"] = subj
    return kind(s.r).format_map(sl)


# sentence shapes combining clauses: the first clause's subject is the name or a pronoun, later
# ones a pronoun; {T} is a time phrase
_SHAPES = _W([
    "{act}.", "{feel}.", "{see}.", "{T}, {act}.", "{feel} because {act}.", "When {see}, {act}.",
    "{act}, and then {act2}.", "{act} because {feel}.", "{T}, {see}.", "{see}, so {act}.",
    "After {act}, {feel}.", "{act} and {act2}.", "{act}, but {feel}.", "While {prog}, {see}.",
    "When {see}, {feel}.", "{see}, but {feel}.", "{act} until {feel}.", "As soon as {see}, {act}.",
    "{feel}, so {act}.", "Because {feel}, {act}.", "{act}, {act2}, and {act3}.", "{see} while {prog}.",
    "Even though {feel}, {act}.", "Before {act}, {act2}.", "{T}, {act} because {feel}.",
    "{act} when {see}.", "{T}, when {see}, {act}.", "{see}!", "{feel}, and {act}.",
    "When {see}, {feel} because {act}.", "{act}, and soon {feel}.", "{see}, and {feel}.",
    "{act} while {prog}.", "{feel} when {see}.", "{T}, {see}, and {act}.", "{act}, but then {see}.",
    "Then {see}, so {act} and {act2}.", "{feel}!",
], 1.0, 3.0)
_SHAPE_KEYS = {sh: [k for _, k, _, _ in string.Formatter().parse(sh) if k]
               for sh in _SHAPES.items}


def _sentence(s: _Slots) -> str:
    r = s.r
    shape = _SHAPES(r)
    vals = {}
    subj = s["N"] if r.random() < 0.55 else s["he"]
    for k in _SHAPE_KEYS[shape]:
        if k == "T":
            vals[k] = _render(TIME(r), s)
        else:
            vals[k] = _clause(s, _CLAUSE_KINDS[k.rstrip("23")], subj)
            subj = s["he"]
    t = shape.format_map(vals)
    return t[0].upper() + t[1:]


def _sentences2(s: _Slots) -> str:
    return _sentence(s) + " " + _sentence(s)


# generic dialogue pieces (no final punctuation; the quote template adds it)
QUESTIONS = _W([
    "can I play with your {toy}", "do you want to play with me", "what is that", "where is my {thing}",
    "will you help me", "why are you {bad}", "can we go to the {place2}", "what are you doing",
    "is that your {obj}", "can I have a {food}", "do you like {foods}", "where are you going",
    "what should we do now", "can you {fun}", "have you seen my {thing}", "who are you",
    "how did you do that", "may I have some {mfood}", "can we {fun} together",
    "do you want to see my {thing}", "what happened", "are you okay", "would you like a {food}",
    "how many {animals} can you see", "can I come too", "is it time to {vi}", "what is your name",
    "do you want to be my friend", "why is the {animal} {bad}", "where do {animals} sleep",
    "can you find the {color} {obj}", "who made this {obj}", "can we keep it",
    "what does a {animal} eat", "is this {obj} yours", "will you {vi} with me",
    "does a {animal} {vi}", "why does the {animal} {vi} so much", "can {animals} {vi}",
    "did you hear that {bang}", "can we play {game}", "do you want to ride in my {vehicle}",
    "can you play the {instrument}", "what color is the {vehicle}", "who {vts} the {objs} every day",
    "is it {weather} outside", "what is in the {container}", "can I try your {drink}",
    "can I {vfood} your {food}",
], 1.0, 2.5)
STATEMENTS = _W([
    "I love my {thing}", "let's go to the {place2}", "I am sorry", "this is fun", "I can {fun}",
    "look at the {adj} {animal}", "my {thing} is {adj}", "I want to {vt} the {obj}", "thank you",
    "you are my best friend", "I will help you", "we can share", "it is my turn", "I am {feel}",
    "I like your {obj}", "let's {fun} together", "I found a {adj} {obj}", "don't be {bad}", "it is okay",
    "I have an idea", "I don't want to {vi}", "we did it", "be careful", "you can have it",
    "this {obj} is so {adj}", "I am not {bad}", "{animals} are my favorite", "let's play {game}",
    "I like {foods}", "it is time for bed", "I am hungry", "I can {vi} too", "my {body} hurts",
    "the {animal} is {vi_ing}", "we can {vi} tomorrow", "I will be {careful}",
    "{foods} are yummy", "I think the {animal} wants to {vi}", "it looks like a {animal}",
    "my {animal} {vis} every day", "{animals} {vi} when they are {good}", "{F} always {vts} my {objs}",
    "a {animal} {vis} {adv}", "my {P} {vts} the {objs} on {day}s", "my {thing} is {tcmp} than yours",
    "I am {cmp} than you", "you are the {sup} friend ever", "I heard a {bang}",
    "the {vehicle} is so {adj}", "I want to be a {person}", "let's make {craft}s",
    "I can see {num} {animals}", "my {bodyp} are cold", "the {wthr} is coming",
], 1.0, 2.5)
EXCLAIMS = _W(["wow", "oh no", "yay", "look", "hooray", "oops", "help", "stop", "come back",
               "I did it", "hello", "yes", "no", "watch out", "hurry", "oh my", "thank you",
               "come here", "ouch", "yippee", "uh oh", "hi", "{bang}", "whee", "goodbye",
               "surprise", "oh dear", "yuck", "yum", "ta-da", "look out", "good job"], 1.0, 2.5)

MORALS = _W([
    "sharing is caring", "it is good to be kind", "friends help each other",
    "it is important to listen to {his} {P}", "being brave is not always easy, but it is worth it",
    "it is good to say sorry", "working together makes things easier", "it is good to try new things",
    "being patient pays off", "kindness makes everyone happy", "you should never give up",
    "a good friend is the best gift of all", "helping others feels good",
    "it is better to tell the truth", "every problem can be fixed with a little help",
    "it is okay to ask for help", "small things can make a big difference",
    "being careful keeps you safe", "home is the best place of all",
], 1.0, 2.5)
_MORAL_SHAPES = _W([
    "{N} learned that {m}.", "From that day on, {N} knew that {m}.",
    "{N} learned an important lesson: {m}.", "The moral of the story is that {m}.",
    "{N} learned a good lesson that day: {m}.", "Now {N} knew that {m}.",
    "And so {N} learned that {m}.", "{N} would always remember that {m}.",
], 1.0, 2.0)


def moral(*ms: str):
    """A moral sentence drawn from the plot's own lessons `ms` (all of MORALS when none given)."""
    w = _W(ms, 1.0, 1.5) if ms else MORALS

    def f(s):
        return _MORAL_SHAPES(s.r).format(N=s["N"], m=_render(w(s.r), s))
    return f


def _tpl(w):
    return lambda s: _render(w(s.r), s)


def _tpl_cap(w):  # a quote's opening words
    def f(s):
        t = _render(w(s.r), s)
        return t[0].upper() + t[1:]
    return f


def _pick(w):
    return lambda s: w(s.r)


def _pick_i(w, i):
    return lambda s: w(s.r)[i]


def _opt(w, p):  # an optional word with its trailing space: "{oadj}ball"
    return lambda s: w(s.r) + " " if s.r.random() < p else ""


def _tail(s):  # an optional trailing phrase with its leading space
    return " " + _render(TAILS(s.r), s) if s.r.random() < 0.45 else ""


_FILL = {
    "obj": _pick_i(THINGS, 0), "objs": _pick_i(THINGS, 1), "toy": _pick_i(TOYS, 0),
    "toys": _pick_i(TOYS, 1), "food": _pick_i(FOODS, 0), "foods": _pick_i(FOODS, 1),
    "mfood": _pick(MASSFOOD), "drink": _pick(DRINKS), "animal": _pick_i(ANIMALS, 0),
    "animals": _pick_i(ANIMALS, 1), "place2": _pick(PLACES), "wild": _pick(WILD),
    "nat": _pick_i(NATURE, 0), "nats": _pick_i(NATURE, 1), "furn": _pick(FURNITURE),
    "container": _pick(CONTAINERS), "sky": _pick(SKY),
    "bodyp": lambda s: (KID_BODYP if s["kid"] else BODYP)(s.r),
    "body": lambda s: KID_BODY(s.r) if s["kid"] else BODY(s.r)[0], "abody": _pick_i(BODY, 0),
    "person": _pick_i(PEOPLE, 0),
    "people": _pick_i(PEOPLE, 1), "job": _pick(JOBS),
    "craft": _pick(CRAFTS), "size": _pick(SIZE), "color": _pick(COLOR), "adj": _pick(ADJ),
    "fadj": _pick(FADJ), "cadj": _pick(CADJ), "fcadj": _pick(CADJ), "good": _pick(GOOD),
    "bad": _pick(BAD), "feel": lambda s: GOOD(s.r) if s.r.random() < 0.55 else BAD(s.r),
    "weather": _pick(WEATHER), "adv": _pick(ADV), "num": _pick(NUM), "day": _pick(DAYS),
    "season": _pick(SEASONS), "month": _pick(MONTHS), "part": _pick(PARTS),
    "loud": _pick(LOUD), "trap": _pick(TRAPS), "cloth": _pick_i(CLOTHES, 0), "chore": _pick(CHORES),
    "vi": _pick_i(VI, 0), "vi_ed": _pick_i(VI, 1), "vi_ing": _pick_i(VI, 2), "vis": _pick_i(VI, 3),
    "vt": _pick_i(VT, 0), "vt_ed": _pick_i(VT, 1), "vt_ing": _pick_i(VT, 2), "vts": _pick_i(VT, 3),
    "vfood": _pick_i(VFOOD, 0), "vfood_ed": _pick_i(VFOOD, 1), "vfood_ing": _pick_i(VFOOD, 2),
    "shout": _pick(SHOUT), "fun": _pick_i(FUN, 0), "fun_ing": _pick_i(FUN, 2),
    "careful": _pick(CAREFUL), "fairy": _pick(FAIRY),
    "cmp": _pick_i(_CMP, 1), "sup": _pick_i(_CMP, 2), "cmpb": _pick_i(_CMP, 0),
    "tcmp": _pick_i(_TCMP, 1), "tsup": _pick_i(_TCMP, 2),
    "goal": _pick(GOALS), "picnic": _pick(PICNIC), "climb": _pick(CLIMBS), "csize": _pick(CSIZE),
    "hadj": _pick(HADJ), "stone": _pick(STONES), "treeish": _pick(TREES),
    "vehicle": _pick_i(VEHICLES, 0), "vehicles": _pick_i(VEHICLES, 1),
    "instrument": _pick(INSTRUMENTS), "game": _pick(GAMES), "shape": _pick_i(SHAPES, 0),
    "shapes": _pick_i(SHAPES, 1), "bang": _pick(BANG), "room": _pick(ROOMS), "wthr": _pick(WEATHER_N),
    "at_place": lambda s: _at(PLACES(s.r)), "oadj": _opt(ADJ, 0.3), "ocolor": _opt(COLOR, 0.25),
    "tail": _tail,
    "T": _tpl(TIME), "wverb": _pick(WVERB), "meal": _pick(MEALS),
    "Q": _tpl_cap(QUESTIONS), "St": _tpl_cap(STATEMENTS), "Ex": _tpl_cap(EXCLAIMS),
}


# --- plots ----------------------------------------------------------------------------------------
# A plot is a list of steps: a _W of templates (always), ("?", p, step) (kept with probability p,
# dropped first when a story runs long), "|" (paragraph break), or a callable of the slots.
# Templates may hold several sentences. Fixed per story: N he He him his His self kind skill
# F fhe fHe fhim fhis fHis fkind  P Pcap Phe  thing things tadj place prep  A As Asound(_ing)
# plant fruits.


def T(*templates, s=1.0, k=2.0):
    return _W(templates, s, k)


def opt(p, step):
    return ("?", p, step)


OPENING = T(
    "Once upon a time, there was a {csize} {kind} named {N}.",
    "One day, a {csize} {kind} named {N} went to the {place}{tail}.",
    "Once upon a time, there was a {cadj} {kind} named {N}. {He} lived in a {hadj} {home} near the {place}.",
    "There once was a {kind} named {N} who loved to {fun}.",
    "{N} was a {cadj} {kind} who lived in a {hadj} {home}.",
    "Once there was a {cadj} {kind} called {N}.",
    "Once upon a time, in a {size} {home}, there lived a {kind} named {N}.",
    "In a {hadj} house near the {place}, there lived a {csize} {kind} named {N}.",
    "One {weather} day, a {kind} named {N} was playing {prep} the {place}.",
    "{N} was a {csize} {kind} who liked to {fun}{tail}.",
    "Long ago, there was a {cadj} {kind} named {N}.",
    "It was a {weather} day. {Nk} was {fun_ing} {prep} the {place}.",
    "Every day, {Nk} went to the {place} to {fun}.",
    "There was once a {csize} {kind}. {His} name was {N}.",
    "Once upon a time, a {cadj} {kind} named {N} lived with {his} {P} in a {hadj} {home}.",
    "{N} was a {cadj} little {kind}. {He} loved {fun_ing} more than anything.",
    "One {season} morning, {Nk} woke up early and looked out the window.",
    "In a {hadj} town, there was a {kind} named {N}, and {he} was very {cadj}.",
    "Once upon a time, there lived a {kind} named {N}. {He} was {cadj} and {cadj2}.",
    "{Nk} had a {color} {cloth} and a big smile.",
    "Once upon a time, in a land far away, there was a {cadj} {kind} named {N}.",
    "Not long ago, a {csize} {kind} named {N} lived next to the {place}.",
    "{N} was a {kind} with a {color} {cloth} and a {cadj} heart.",
    "There was a {kind} named {N} who lived {prep} the {place} with {his} {P}.",
)
FRIEND_INTRO = T(
    "{N} had a friend named {F}.",
    "{N}'s best friend was a {fkind} named {F}.",
    "{He} had a good friend, a {fcadj} {fkind} named {F}.",
    "{F} was {N}'s best friend.",
    "{N} and {F} were best friends.",
    "{He} lived next to a {fkind} named {F}.",
    "{N} liked to play with a {fkind} named {F}.",
    "{N} had a {fcadj} friend named {F}, who liked to {fun}.",
    "{N} often played {game} with a {fkind} named {F}.",
)
THING_INTRO = T(
    "{N} had a {tadj} {thing}.",
    "{N} loved {his} {tadj} {thing} very much.",
    "{His} favorite toy was a {tadj} {thing}.",
    "{N} had a {tadj} {thing} that {he} took everywhere.",
    "{N} got a {tadj} {thing} for {his} birthday.",
    "{He} had a {tadj} {thing}, and {he} played with it every day.",
    "{N} had a {tadj} {thing} that {his} {P} gave {him}.",
    "Every night, {N} slept with {his} {tadj} {thing}.",
)
ENDING = T(
    "They were very happy.",
    "{N} smiled. It was the best day ever.",
    "They played together all day long.",
    "From that day on, {N} and {F} were best friends.",
    "{N} went home with a big smile on {his} face.",
    "And they all lived happily ever after.",
    "{N} felt {good} and warm inside.",
    "That night, {N} went to bed happy.",
    "The end.",
    "Everyone laughed and had lots of fun.",
    "{N} hugged {F}, and they both smiled.",
    "It was a {adj} day, and {N} never forgot it.",
    "When the sun went down, they went home, tired but happy.",
)
GOODEND = T("{N} was very happy.", "{N} smiled a big smile.", "{He} felt {good}.",
            "{He} was so {good}!", "{N} laughed and clapped {his} hands.",
            "{N} jumped up and down with joy.", "{N} danced around the {room}.")

PLOTS: dict[str, list] = {}

PLOTS["lost"] = [
    OPENING, THING_INTRO, opt(0.5, _sentence), "|",
    T("One day, {N} could not find {his} {thing}.",
      "One morning, {N} looked for {his} {thing}, but it was gone.",
      "{T}, {N} went to play with {his} {thing}, but it was not there.",
      "One day, {N} took {his} {thing} to the {place}{tail} and lost it.",
      "{T}, {N} looked in {his} {container}, but {his} {thing} was not inside."),
    T("{He} felt very {bad}.", "{He} sat down on the {furn} and started to cry.",
      "{N} was so {bad} that {he} wanted to cry.",
      "{N} was {bad}, and {his} eyes filled with tears."),
    T('"Where is my {thing}?" {N} asked {his} {P}.',
      '{N} ran to {his} {P} and said, "{Pcap}, I lost my {thing}!"',
      '"Have you seen my {thing}?" {N} asked {F}.',
      '{N} cried, "My {thing} is gone! What will I do?"'),
    T('{His} {P} said, "Don\'t worry, {N}. We will find it together."',
      '"Let\'s look {prep} the {place}," said {F}.',
      '"Where did you play with it last?" asked {his} {P}.',
      '"I will help you look," said {F}.'),
    opt(0.6, T("{N} looked under the {furn}. {He} looked in the {room} and behind the door.",
               "They looked everywhere, but they could not find it.",
               "{N} and {F} looked in the {W}, and they looked near the {nat}.",
               "{He} looked high and low, in the {room} and in the {room2}.")),
    "|",
    T("At last, after a long search, {he} found the {thing} under the {furn}.",
      "Then {he} saw something {color} near the {nat}. It was {his} {thing}!",
      'Suddenly, {F} shouted, "Look! There it is!" The {thing} was {prep} the {place}.',
      "Just then, a {size} {A} came with the {thing}. The {A} had found it!",
      "In the end, {his} {P} found it in the {container}."),
    opt(0.8, GOODEND),
    opt(0.7, T('{He} hugged {his} {thing} and said, "I will never lose you again."',
               "{N} thanked {F} and gave {fhim} a big hug.",
               "From that day on, {N} always put {his} {thing} away.",
               "{N} promised to take good care of {his} {thing}.")),
    opt(0.3, moral("it is good to be careful with the things you love", "friends help each other",
                   "it is okay to ask for help")),
]

PLOTS["share"] = [
    OPENING, FRIEND_INTRO, opt(0.4, _sentence), "|",
    T("One day, {N} and {F} were playing {prep} the {place}{tail}.",
      "{T}, {N} went to {F}'s house to play.",
      "One {weather} day, {F} came to play with {N}."),
    T("{F} had a {tadj} {thing}. {N} wanted to play with it too.",
      "{N} saw that {F} had a {tadj} {thing}, and {he} wanted it.",
      "{F} brought a {tadj} {thing}. It was the {tsup} {thing} {N} had ever seen."),
    T('"Can I play with your {thing}?" asked {N}.',
      '{N} asked, "May I have a turn, please?"',
      '"Please, can I hold it?" {N} asked.'),
    T('"No, it is mine!" said {F}.', '"No! Go away!" {fhe} shouted.',
      '{F} held the {thing} tight and said, "It is mine. You can\'t have it."',
      '"Not now," said {F}. "I am playing with it."'),
    T("{N} felt {bad} and looked down at {his} feet.", "{N} was sad and went to sit under a {treeish}.",
      "{N} started to cry.", "{N} was {bad}, so {he} walked away."),
    "|",
    T("{F} saw that {N} was sad, and {fhe} felt bad too.",
      "Then {F} thought about it. Playing alone was not much fun.",
      "After a while, {F} was not happy either."),
    T('"I am sorry," said {F}. "We can share."',
      '{F} went to {N} and said, "Here, you can play with it too."',
      '"Let\'s take turns," said {F}.'),
    T("{fHe} gave the {thing} to {N}.", "They took turns with the {thing}.",
      '{N} smiled and said, "Thank you, {F}!"'),
    opt(0.7, T("They played together{tail} and had lots of fun.",
               "Sharing was much more fun than playing alone.",
               "They laughed and played until the sun went down.")),
    opt(0.5, T("{F} learned that sharing is caring.", "They both learned that it is good to share.")),
]

PLOTS["rescue"] = [
    OPENING, opt(0.5, _sentence), "|",
    T("One day, {N} went to the {place}{tail}. There {he} saw a {size} {A}.",
      "{T}, {N} heard a {loud} sound {prep} the {place}. It was a {size} {A}.",
      "While {N} was {vi_ing} {prep} the {place}, {he} found a {size} {A}."),
    T("The {A} was stuck in a {trap} and could not get out.",
      "The {A} looked {bad}. It had hurt its {abody}.",
      "The {A} was lost and could not find its mom.", "The {A} was cold and hungry."),
    T('"What is wrong, little {A}?" asked {N}.', '"Are you okay?" {N} asked the {A}.',
      '{N} said, "Don\'t be scared. I will help you."'),
    opt(0.7, T('"I can\'t get out," said the {A}.', '"I am lost, and I want my mom," the {A} cried.',
               'The {A} looked at {N} with {color} eyes.', 'The {A} {Asound} softly.')),
    "|",
    T("{N} wanted to help. {He} {vt_help} very carefully.",
      "{N} ran to get {his} {P}. Together, they helped the {A}.",
      "{N} thought hard. Then {he} had an idea.",
      "{N} was a little scared, but {he} was brave."),
    T("{He} gave the {A} some {mfood} and {drink}.",
      "Soon the {A} was free!", "At last, the {A} could move again.",
      "{He} took the {A} home and kept it warm."),
    opt(0.8, T("The {A} {Asound} happily and ran around {N}.",
               '"Thank you!" said the {A}. "You are very kind."',
               "The {A} was so happy. It licked {N}'s {body}.",
               "The {A} found its mom, and they were together again.")),
    opt(0.7, T("From that day on, {N} and the {A} were best friends.",
               "{N} felt proud because {he} had helped.",
               "Every day after that, the {A} came to visit {N}.")),
    opt(0.3, moral("helping others feels good", "it is good to be kind", "being brave is not always "
                   "easy, but it is worth it")),
]

PLOTS["rain"] = [
    OPENING, opt(0.5, THING_INTRO), "|",
    T("One day, {N} wanted to go to the {place} and play with {his} {thing}.",
      "{N} and {his} {P} planned a picnic {prep} the {place}.",
      "{T}, {N} put on {his} {color} {cloth} to go outside and play with {F}."),
    T("But then, dark clouds came, and it started to rain.", "But it began to rain very hard.",
      "Just then, the sky turned gray, and big raindrops fell.",
      "But a big storm came, with wind and thunder."),
    T("{N} was sad because {he} could not go outside.", "{N} felt {bad}. {He} looked out the window.",
      '"Oh no!" cried {N}. "Now I can\'t play outside!"'),
    "|",
    T('{His} {P} said, "Don\'t be sad, {N}. We can play inside."',
      '"Let\'s build a fort," said {his} {P}.', '{His} {P} smiled. "I have an idea," {Phe} said.'),
    T("They built a big fort with pillows and blankets in the {room}.",
      "They played {game} and sang songs{tail}.",
      "They baked {bk} together and ate them warm.",
      "They read a book about a {A} who lived in the {W}.",
      "{N} drew a picture of a {color} {A}."),
    opt(0.6, T("Soon the rain stopped, and the sun came out. There was a big rainbow in the sky!",
               "After the rain, {N} jumped in the puddles. Splash!",
               "When the rain stopped, they went outside. Everything was wet and shiny.")),
    opt(0.6, T("{N} learned that rainy days can be fun too.", "It was a fun day after all.",
               "{N} smiled. {He} liked rainy days now.")),
]

PLOTS["fear"] = [
    OPENING, opt(0.4, _sentence), "|",
    T("{N} was scared of the dark.", "{N} was afraid of the big {A} that lived near the {place}.",
      "One night, {N} could not sleep.", "{N} did not like loud noises."),
    T("{T}, {he} heard a {loud} noise coming from the {room}.",
      "At night, {he} heard something outside the window.",
      "Then {he} saw a big shadow on the wall.", "{T}, {he} heard a {bang} from the {room}."),
    T('"Who is there?" asked {N}.', '"What is that?" {N} whispered.',
      '{N} called, "{Pcap}! {Pcap}! Come here!"'),
    T("{He} hid under {his} blanket and closed {his} eyes.", "{He} shook with fear.",
      "{His} knees were shaking, and {he} felt very {bad}."),
    "|",
    T("{His} {P} came in and turned on the light.", "Then {he} looked again, very slowly.",
      "{N} took a deep breath and was brave."),
    T("It was only a {size} {A}!", "It was only {his} {thing} on the chair!",
      "It was just the wind and a branch on the window.", "It was just {F} playing a game."),
    T("{N} laughed. {He} was not scared anymore.",
      '"You are safe," said {his} {P}, and gave {him} a hug.',
      "{N} felt silly, but happy."),
    opt(0.5, T("That night, {N} slept well.", "{N} learned that being brave is not so hard.",
               "After that, {N} was never scared of the dark again.")),
]

PLOTS["learn"] = [
    OPENING, opt(0.5, FRIEND_INTRO), "|",
    T("{N} wanted to learn to {skill}.", "{N} saw {F} {skill}, and {he} wanted to try too.",
      "{T}, {N} decided to learn to {skill}."),
    T("{He} tried and tried, but {he} fell down and hurt {his} {body}.",
      "It was very hard, and {he} felt {bad}.", "At first, {he} could not do it at all.",
      "{He} tried once. {He} tried twice. But it did not work."),
    T('"I can\'t do it!" cried {N}.', '{N} said, "This is too hard!"',
      '"Maybe I will never learn," {N} said sadly.'),
    "|",
    T('{F} said, "Keep trying. You can do it!"', '{His} {P} said, "Don\'t give up, {N}."',
      '"Try one more time," said {his} {P}. "I will help you."'),
    T("{N} tried again. This time, {he} did it!", "{N} practiced every day{tail}.",
      "So {N} tried again, and again, and again."),
    opt(0.7, T("At last, {he} could {skill}!", '"I did it!" shouted {N}.',
               "Soon {N} could {skill} very well.")),
    opt(0.8, T("{N} was so proud.", "Everyone clapped and cheered.", "{His} {P} gave {him} a big hug.")),
    opt(0.4, moral("it is good to never give up", "practice helps", "being patient pays off")),
]

PLOTS["gift"] = [
    OPENING, FRIEND_INTRO, "|",
    T("It was {F}'s birthday.", "Soon it would be {F}'s birthday.",
      "One day, {F} was feeling {bad}."),
    T("{N} wanted to give {fhim} a special gift.", "{N} wanted to make {F} happy.",
      '{N} thought, "What can I give {F}?"'),
    T("{He} made a {craft} with {color} paper and glue.",
      "{He} went to the store and bought a {tadj} {thing}.",
      "{He} picked {num} {color} flowers {prep} the {place}.",
      "{He} baked {bk} with {his} {P}."),
    opt(0.5, _sentence), "|",
    T("{N} gave the gift to {F}{tail}.", "{N} ran to {F}'s house with the gift{tail}.",
      "When {F} saw the gift, {fhe} smiled."),
    T('"Thank you, {N}! I love it!" said {F}.', '"Wow! It is so {adj}!" {F} said.',
      '{F} hugged {N} and said, "You are the best friend ever."'),
    opt(0.8, T("They ate cake and played {game} all day.", "{N} felt warm and happy inside.",
               "Giving a gift made {N} happy too.")),
    opt(0.4, moral("giving makes you happy too", "a good friend is the best gift of all",
                   "small things can make a big difference")),
]

PLOTS["explore"] = [
    OPENING, opt(0.6, FRIEND_INTRO), "|",
    T("One day, {N} and {F} went to explore the {W}{tail}.",
      "{T}, {N} and {F} walked into the {W} to look for {adj} {Os}.",
      "{N} and {F} wanted to go on an adventure in the {W}."),
    T("They walked past tall trees, big rocks, and a {size} {nat}.", "The {W} was big and full of {animals}.",
      "They saw {num} {animals} and a {size} {nat}.",
      "On the way, they saw a {job}."),
    opt(0.5, _sentence),
    T("Suddenly, {N} saw a {adj} box under a bush.", "Then {he} found a {size} door in a tree.",
      "Behind a {nat}, there was a {adj} cave."),
    T('"What is in there?" asked {F}.', '"Let\'s look inside," said {N}.',
      '"Should we open it?" {N} asked.'),
    "|",
    T("They opened it slowly. Inside, there were {num} {color} {Os}!",
      "Inside, there was a {size} {A} with a {color} {cloth}.",
      "Inside, they found a map with a big red X on it."),
    T("{N} and {F} were very excited and jumped up and down.", '"Wow!" they said together.',
      "{N}'s eyes grew big."),
    opt(0.7, T("They took the {Os} home and showed {his} {P}.",
               "They played there until it was time to go home.",
               "They promised to come back the next day.")),
    opt(0.5, ENDING),
]

PLOTS["bake"] = [
    OPENING, "|",
    T("One day, {N} and {his} {P} wanted to bake {bk}.",
      "{T}, {N} helped {his} {P} bake {bk} in the kitchen.",
      "{N} wanted to bake {fadj} {bk} for {F}."),
    T("They mixed flour, sugar, and eggs in a big bowl.",
      "They put butter, milk, and honey in a bowl and stirred.",
      "{N} added {num} {foods} and a little salt."),
    opt(0.6, T("{N} stirred and stirred until {his} arm was tired.",
               "The kitchen smelled sweet and warm.")),
    T("But {N} was in a hurry and dropped the bowl.", "Oh no! {N} put in too much salt.",
      "Then {N} forgot to watch the oven."),
    T('"Oops!" said {N}. "I made a big mess on the floor."', "{N} felt {bad} and wanted to cry.",
      '"Oh no," said {N} sadly.'),
    "|",
    T('{His} {P} said, "It\'s okay. We can try again."',
      '{His} {P} laughed and said, "Mistakes happen."'),
    T("They cleaned up and tried again, very slowly this time.",
      "This time, {N} was very careful."),
    T("The {bk} came out {fadj} and {fadj2}.",
      "Soon the {bk} were ready, and they smelled so good.", "The {bk} were perfect."),
    opt(0.7, T("{N} shared them with {F} and the {As}.", "They ate them with a glass of {drink}.",
               '{N} took one big bite. "Yum!" {he} said.')),
    opt(0.3, moral("mistakes are okay if you try again", "being patient pays off",
                   "working together makes things easier")),
]

PLOTS["listen"] = [
    OPENING, opt(0.5, THING_INTRO), "|",
    T('{His} {P} said, "Don\'t play with the {obj} in the house."',
      '{His} {P} said, "Stay close to me {prep} the {place}."',
      '"Don\'t climb the {climb}," said {his} {P}. "It is not safe."'),
    T("But {N} did not listen.", "{N} nodded, but {he} did not listen.",
      "{N} wanted to have fun, so {he} did not listen."),
    T("{He} played and played, and then there was a big crash.",
      "{He} went too far and could not find {his} {P}.",
      "{He} climbed up high, but then {he} could not get down."),
    T("{N} was very scared.", '"Help!" cried {N}.', "{N} felt {bad} and started to cry."),
    "|",
    T("{His} {P} heard {him} and came running as fast as {Phe} could.",
      "A kind {person} heard {him} and helped.",
      "{F} ran to get {his} {P}."),
    T('"I am sorry," said {N}. "I should have listened."', '{N} said, "I will listen next time."'),
    T("{His} {P} hugged {him}.", '"I am glad you are safe," said {his} {P}.'),
    opt(0.6, T("{N} learned to listen to {his} {P}.", "From then on, {N} always listened.")),
]

PLOTS["race"] = [
    OPENING, FRIEND_INTRO, "|",
    T("One day, {N} and {F} had a race to the {goal}.",
      "{T}, there was a big race {prep} the {place}.",
      '"Let\'s have a race!" said {F}.'),
    T("{F} was very fast, and {N} was fast too.", "They ran as fast as they could past the {nat}.",
      "Ready, set, go! They ran and ran."),
    T("But {N} tripped on a {stone} and fell down.", "Then {F} fell and hurt {fhis} {body}.",
      "Halfway, {N} saw a {size} {A} that needed help."),
    opt(0.5, T('"Ouch!" {he} cried.', '"Are you okay?" asked {F}.')),
    "|",
    T("{F} stopped and helped {him} up.", "{N} stopped running to help.",
      "They did not care about the race anymore."),
    T("They crossed the line together{tail}.", "They walked the rest of the way together, side by side.",
      "In the end, nobody won, but everyone was happy."),
    opt(0.7, T('"Friends are better than winning," said {F}.',
               "{N} knew that being kind was the best way to win.",
               "They laughed and had a picnic with {foods}.")),
]

PLOTS["newfriend"] = [
    OPENING, "|",
    T("{N} was new in town and had no friends.", "{N} felt lonely.",
      "{N} did not have anyone to play with."),
    T("Every day, {he} played alone {prep} the {place} with {his} {thing}.", "{He} wished {he} had a friend.",
      "{He} sat on a bench and watched the other kids play."),
    T("One day, {he} saw a {fkind} named {F} sitting alone.",
      "{T}, a {fcadj} {fkind} named {F} came up to {him}.",
      "Then {he} met a {fkind} named {F}, who was {bad} too."),
    T('"Do you want to play with me?" asked {N}. "Yes!" said {F}.',
      '"Hi, I am {F}. What is your name?" asked the {fkind}. "I am {N}," said {N} with a smile.',
      '"Can I play with you?" asked {F}. "Yes, let\'s be friends!" said {N}.',
      '"Would you like to play {game}?" asked {N}. "I would love to," said {F}.'),
    "|",
    T("They played with {N}'s {thing}{tail}.", "They {vi_ed} and {vi_ed2} {prep} the {place}.",
      "They played {game} and {game2}."),
    opt(0.5, _sentence),
    T("From that day on, they were best friends.", "{N} was not lonely anymore.",
      "{N} had a new friend, and {he} was so {good}."),
]

PLOTS["magic"] = [
    OPENING, opt(0.4, _sentence), "|",
    T("One day, {N} found a {adj} {O} {prep} the {place}.",
      "{T}, a {fairy} gave {N} a magic {O}.",
      "In the {W}, {N} found a {color} {O} that glowed."),
    T("When {he} touched it, it began to glow.", "It was a magic {O}!",
      "The {O} could make wishes come true."),
    T('"I wish I could fly," said {N}.', '"I wish I had a {size} {A}," said {N}.',
      '{N} said, "I wish I could talk to the {As}."'),
    T("Suddenly, {he} was flying over the {W}!", "Poof! A {size} {A} stood in front of {him}.",
      "Suddenly, the {As} began to talk!"),
    opt(0.6, T("{He} saw {animals}, {nats}, and houses below.", '"Hello, {N}!" said a {A}.',
               "{N} laughed and played with the {As}.")),
    "|",
    T("When {he} woke up, {he} was in {his} bed. It was only a dream.",
      "Then the magic stopped, and {N} was back home.",
      "At sunset, {N} said goodbye and went home."),
    opt(0.7, T("But {he} still had the {O} in {his} hand.",
               "{N} smiled. It was the best dream ever.",
               "{N} could not wait to tell {his} {P}.")),
]

PLOTS["garden"] = [
    OPENING, "|",
    T("{N} planted a little seed in the garden.",
      "{N} and {his} {P} planted seeds in the backyard.",
      "{T}, {N} got a small pot and some seeds."),
    T("Every day, {he} gave it water{tail}.", "{He} watered the seeds and waited.",
      "{He} waited and waited, but nothing happened."),
    T("Then one {weather} morning, a small green sprout came up out of the dirt!",
      "After many days, {he} saw a tiny green leaf.",
      '{N} was sad, but {his} {P} said, "Be patient."'),
    "|",
    T("The sprout grew and grew into a big {plant}.", "Soon there were {color} flowers everywhere.",
      "The plant grew tall, and it had {num} {fruits} on it."),
    T("{He} picked the {fruits} and shared them with {F}.", "{N} was so proud of {his} garden.",
      "The bees and butterflies came to visit."),
    opt(0.5, T("{N} learned that good things take time.", "It was the {tsup} garden in the town.")),
]

PLOTS["picnic"] = [
    OPENING, "|",
    T("One {weather} day, {N} and {his} family went on a picnic {picnic}.",
      "{T}, {N} and {F} had a picnic {picnic}."),
    T("They brought {Fds}, {foods}, and some {mfood}.", "{His} {P} packed {Fds} and {drink}.",
      "They sat on a {color} blanket and ate {Fds}{tail}."),
    T("Then a {size} {A} came and took a {Fd}!", "A {A} came close and looked at the {Fd}.",
      "Suddenly, a {size} {A} walked onto the blanket."),
    T('"Hey! That is my {Fd}!" shouted {N}.', '"Look! The {A} is hungry," said {N}.',
      '"Shoo! Go away!" said {N}.'),
    "|",
    T("But then {N} saw that the {A} was very hungry.", "{N} felt sorry for the {A}.",
      '{His} {P} said, "Maybe it is hungry too."'),
    T("So {N} gave the {A} some {mfood}.", "{N} shared {his} {Fd} with the {A}."),
    T("The {A} was happy and {Asound}.", "The {A} ate it all and stayed to play.",
      "Everyone laughed, even the {A}."),
    opt(0.5, moral("sharing is caring", "it is good to be kind", "kindness makes everyone happy")),
]

PLOTS["broken"] = [
    OPENING, THING_INTRO, "|",
    T("One day, {N} dropped {his} {thing}, and it broke.",
      "{T}, {F} played with the {thing} too hard, and it broke.",
      "One day, {N}'s {thing} fell off the {furn} and broke."),
    T("{N} was very {bad}.", '"My {thing}!" cried {N}.', "{N} started to cry."),
    opt(0.6, T('"I am sorry," said {F}. "I did not mean to."', '"It was an accident," said {F}.')),
    "|",
    T('{His} {P} said, "Let\'s fix it together."', "{N} had an idea. {He} got some tape and glue.",
      "{His} {P} took the {thing} and looked at it."),
    T("They worked very hard and fixed the {thing}.", "It took a long time, but they fixed it.",
      "Soon the {thing} was as good as new."),
    T("{N} was so happy!", "{N} hugged {his} {P}.", '"Thank you!" said {N}.'),
    opt(0.5, T("{N} learned to be careful with {his} toys.",
               "{N} said sorry to {F}, and they played again.")),
]

PLOTS["sick"] = [
    OPENING, "|",
    T("One morning, {N} woke up and felt sick.", "{T}, {N}'s {body} hurt.",
      "{N} ate too many {foods}, and {his} tummy hurt."),
    T("{He} could not go to the {place}.", "{He} had to stay in bed.", "{He} felt {bad} and tired."),
    T('{His} {P} said, "You need to rest, {N}."', "{His} {P} took {him} to the doctor."),
    opt(0.5, T('"Take this medicine," said the doctor. "It will help you get better."',
               "{His} {P} gave {him} warm soup and {drink}.")),
    "|",
    T("{F} came to visit with a {craft} and some {Fds}.", "{N} read a book about {As} and {animals}.",
      "{N} slept and slept."),
    T("The next day, {N} felt much better and wanted to play.", "Soon {N} was well again."),
    T("{He} ran outside to {vi}.", "{He} went back to the {place} with {F}.",
      "{He} thanked {his} {P} with a big hug."),
]

PLOTS["helpful"] = [
    OPENING, opt(0.5, _sentence), "|",
    T("One day, {N} saw that {his} {P} was very busy. {N} wanted to help.",
      "{T}, {N} saw that {his} {P} was tired. {N} wanted to help.",
      "{T}, {N} saw that {his} {P} had a lot of work to do."),
    T('"Can I help you?" asked {N}.', '{N} said, "Let me help you, {Pcap}."',
      '"{Pcap}, I can help!" said {N}.'),
    T("{He} helped {his} {P} {chore}.", "{N} helped {his} {P} {chore} and {chore2}."),
    opt(0.5, _sentence), "|",
    T('"Thank you, {N}! You are so kind," said {his} {P}.',
      '{His} {P} smiled and said, "What a big help you are!"',
      "{His} {P} gave {him} a big hug and a {Fd}."),
    T("{N} felt warm and happy inside.", "{N} was proud of {self} for helping."),
    opt(0.5, moral("helping others feels good", "kindness makes everyone happy")),
]

PLOTS["stranger"] = [  # helping someone outside the family
    OPENING, opt(0.5, _sentence), "|",
    T("{T}, {N} saw an old {Pn} with heavy bags {prep} the {place}. "
      '"Can I help you?" asked {N}. {He} carried the bags all the way to the {Pn}\'s house.',
      "{T}, {N} met a {Pn} who looked {bad}. "
      '"What is wrong?" asked {N}. "I am lost," said the {Pn}. {N} helped the {Pn} find the way home.',
      "One day, a {Pn} {prep} the {place} dropped {num} {Os}. "
      '{N} said, "Don\'t worry. I will help you." {He} picked up all the {Os} and gave them back.',
      "{T}, {N} saw a {Pn} who could not reach a {O} on a high shelf. "
      '"I can help!" said {N}. {He} climbed on a stool and got the {O} down.'),
    "|",
    T('"Thank you, {N}! You are so kind," said the {Pn}.',
      "The {Pn} smiled and gave {him} a {Fd}.",
      "The {Pn} was so happy that {Pnhe} gave {N} a {tadj} {thing}."),
    T("{N} felt warm and happy inside.", "{N} was proud of {self}.", "{N} skipped all the way home."),
    opt(0.5, moral("helping others feels good", "kindness makes everyone happy", "it is good to be kind")),
]

PLOTS["free"] = [  # a looser story: generic sentences and dialogue around the hero
    OPENING, opt(0.7, FRIEND_INTRO), _sentence, "|",
    T("{T}, {N} went to the {place}.", "{T}, {N} and {F} went to the {place}."),
    _sentence, opt(0.8, _sentence),
    T('"{Q}?" asked {N}.', '{N} asked, "{Q}?"', '{N} looked at {F} and asked, "{Q}?"'),
    T('"{St}," said {F}.', '{F} said, "{St}."', '"{Ex}!" said {F}. "{St}."', '{F} {shout}, "{St}!"'),
    opt(0.8, _sentence), "|",
    opt(0.7, _sentences2),
    T('"{Ex}!" {shout} {N}. "{St}!"', '{N} said, "{St}."', '"{St}," {N} said {adv}.'),
    ENDING,
]

_FILL["vt_help"] = _tpl(_list("pulled the {A} out, lifted the {A} up, moved the sticks away, "
                              "opened the net, dug the {A} out, held out {his} hand"))
_PLOT = _W(list(PLOTS), 0.5, 3.0)


# --- post-processing ----------------------------------------------------------------------------

# templates only ever write "a"; fix it where the next word needs "an" (and the few reverse cases)
_ART = re.compile(r"\b([Aa]) ([aeiouAEIOU]\w*|[Hh](?:our|onest|onor|eir|erb)\w*)")
_SENT_END = re.compile(r'[.!?]"?(?=\s+["A-Z]|\s*$)')


def count_sentences(text: str) -> int:
    """Sentences in a story: terminal punctuation (maybe closing a quote) before a capital or the end."""
    return len(_SENT_END.findall(text))


def _art_sub(m) -> str:
    w = m.group(2)
    lw = w.lower()
    if lw in A_EXCEPTIONS or (lw[0] == "h" and lw not in AN_EXCEPTIONS):
        return m.group(0)
    return m.group(1) + "n " + w




def _has(text: str, name: str, before: str = "") -> bool:
    """Whether `before + name` occurs in text as a whole word."""
    key = before + name
    i = text.find(key)
    n = len(key)
    while i >= 0:
        if (i == 0 or not text[i - 1].isalpha()) and not text[i + n:i + n + 1].isalpha():
            return True
        i = text.find(key, i + 1)
    return False


# --- the story ------------------------------------------------------------------------------------


def _cast(r) -> dict:
    s = {}
    girl = r.random() < 0.5
    if r.random() < 0.68:
        kind = "girl" if girl else "boy"
        name = _GIRL(r) if girl else _BOY(r)
        skill = SKILLS_KID(r)
        if not girl:
            skill = skill.replace("her ", "his ")
    else:
        kind = HERO_ANIMALS(r)[0]
        name = _PET(r) if r.random() < 0.5 else (_GIRL(r) if girl else _BOY(r))
        skill = SKILLS_ANIMAL(r)
    s["N"], s["kind"], s["skill"] = name, kind, skill
    s["kid"] = kid = kind in ("girl", "boy")
    s["Nk"] = name if kid else name + " the " + kind
    s["home"] = HOMES(r) if kid else ANIMAL_HOMES(r)
    s.update({"he": "she", "He": "She", "him": "her", "his": "her", "His": "Her", "self": "herself"}
             if girl else
             {"he": "he", "He": "He", "him": "him", "his": "his", "His": "His", "self": "himself"})
    fgirl = r.random() < 0.5
    while True:
        if r.random() < 0.7:
            fkind, fname = ("girl", _GIRL(r)) if fgirl else ("boy", _BOY(r))
        else:
            fkind = ANIMALS(r)[0]
            fname = _PET(r) if r.random() < 0.5 else (_GIRL(r) if fgirl else _BOY(r))
        if fname != name and name not in fname and fname not in name:
            break
    s["F"], s["fkind"] = fname, fkind
    s.update({"fhe": "she", "fHe": "She", "fhim": "her", "fhis": "her", "fHis": "Her"} if fgirl else
             {"fhe": "he", "fHe": "He", "fhim": "him", "fhis": "his", "fHis": "His"})
    p = FAMILY(r)
    s["P"], s["Pcap"], s["Phe"] = p, p[0].upper() + p[1:], "he" if p in _HE_FAMILY else "she"
    s["thing"], s["things"] = TOYS(r) if r.random() < 0.75 else THINGS(r)
    s["tadj"] = COLOR(r) if r.random() < 0.5 else ADJ(r)
    place = PLACES(r)
    s["place"], s["prep"] = place, _PREP.get(place, "in")
    s["A"], s["As"] = a = ANIMALS(r)
    snd = SOUNDS.get(a[0], _DEFAULT_SOUND)
    s["Asound_b"], s["Asound"], s["Asound_ing"] = snd[0], snd[1], snd[2]
    s["plant"], s["fruits"] = _PLANT(r)
    s["O"], s["Os"] = THINGS(r)
    s["W"] = WILD(r)
    s["bk"] = BAKED(r)
    s["Fd"], s["Fds"] = FOODS(r)
    pn = HELPEES(r)
    s["Pn"], s["Pnhe"] = pn
    return s


def _draft(r):
    """One story as [text, optional] chunks, None marking a paragraph break."""
    s = _Slots(_cast(r))
    s.r = r
    F = s["F"]
    chunks = []
    friend_known = False
    for st in PLOTS[_PLOT(r)]:
        if st == "|":
            chunks.append(None)
            continue
        optional = False
        if type(st) is tuple:
            if r.random() >= st[1]:
                continue
            optional, st = True, st[2]
        text = _render(st(r), s) if type(st) is _W else st(s)
        if not friend_known and _has(text, F):
            # the friend's first appearance: unless this text introduces them, do so right
            # after the opening
            friend_known = True
            if st is FRIEND_INTRO or _has(text, F, "named ") or _has(text, F, "called "):
                optional = False  # trimming must keep the introduction
            else:
                chunks.insert(1, [_render(FRIEND_INTRO(r), s), False])
        chunks.append([text, optional])
    return chunks


def _story(r) -> str:
    while True:
        chunks = _draft(r)
        n = count_sentences(" ".join(c[0] for c in chunks if c))
        i = len(chunks) - 1
        while n > MAX_SENTENCES and i >= 0:  # too long: drop optional steps from the end
            c = chunks[i]
            if c and c[1]:
                n -= count_sentences(c[0])
                chunks[i] = False
            i -= 1
        if 3 <= n <= MAX_SENTENCES:
            break
    paras, cur = [], []
    for c in chunks:
        if c is None:
            if cur:
                paras.append(" ".join(cur))
                cur = []
        elif c:
            cur.append(c[0])
    if cur:
        paras.append(" ".join(cur))
    return _ART.sub(_art_sub, "\n\n".join(paras))


def generate(seed: int) -> Iterator[str]:
    """An endless, deterministic stream of stories: the same seed gives the same stories."""
    r = random.Random(seed)
    while True:
        yield _story(r)


def stories(n: int, seed: int) -> list[str]:
    """The first `n` stories of `generate(seed)`."""
    g = generate(seed)
    return [next(g) for _ in range(n)]
