// Quickstart: two related schemas on an embedded SQLite file under ./data/.
// Run with `npm start`. Swap DB_DIALECT/SGBD_URI (or MOSTA_DATA=net) and nothing else changes.
import plug from '../../index.js'

process.env.DB_DIALECT ||= 'sqlite'
process.env.SGBD_URI ||= './data/quickstart.db'
process.env.DB_SCHEMA_STRATEGY ||= 'update'

const Author = {
  name: 'Author',
  collection: 'authors',
  fields: { name: { type: 'string', required: true }, email: { type: 'string', unique: true } },
  relations: { books: { target: 'Book', type: 'one-to-many', mappedBy: 'author' } },
  indexes: [{ fields: { email: 'asc' }, unique: true }],
}

const Book = {
  name: 'Book',
  collection: 'books',
  timestamps: true,
  fields: { title: { type: 'string', required: true }, year: { type: 'number' }, tags: { type: 'array' } },
  relations: { author: { target: 'Author', type: 'many-to-one', required: true } },
  indexes: [],
}

class BookRepository extends plug.BaseRepository {
  constructor(dialect) {
    super(Book, dialect)
  }
}

plug.registerSchemas([Author, Book])
const dialect = await plug.getDialect()
const books = new BookRepository(dialect)
const authors = new plug.BaseRepository(Author, dialect)

const ada =
  (await authors.findById({ email: 'ada@example.org' })) ?? (await authors.create({ name: 'Ada Lovelace', email: 'ada@example.org' }))
const book = await books.create({ title: `Notes, run ${new Date().toISOString()}`, year: 1843, tags: ['engines'], author: ada.id })
console.log('created      ', book)

const withAuthor = await books.findByIdWithRelations(book.id, ['author'])
console.log('with author  ', withAuthor.title, '->', withAuthor.author.name)

const updated = await books.update(book.id, { year: 1842 })
console.log('updated year ', updated.year)

console.log('books by Ada ', await books.count({ author: ada.id }))
const shelf = await authors.findByIdWithRelations(ada.id, ['books'])
console.log('Ada wrote    ', shelf.books.length, 'book(s), newest:', shelf.books.map((b) => b.title).sort().at(-1))

await plug.disconnect()
